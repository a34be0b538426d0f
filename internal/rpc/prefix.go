package rpc

import (
	"fmt"
	"strings"

	"github.com/aura-p2p/aura/internal/core"
)

// MinPrefix is the shortest id prefix a command accepts, as git does: the
// tables print shortened ids, and a person pastes what they see.
const MinPrefix = 8

// ResolvePrefix finds the one of ids (lowercase hex) that in names, in full
// or by a unique prefix of at least MinPrefix hex digits. An ambiguous
// prefix is an error naming the candidates.
func ResolvePrefix(what, in string, ids []string) (int, error) {
	if err := CheckPrefix(what, in); err != nil {
		return 0, err
	}
	in = strings.ToLower(strings.TrimSpace(in))
	found := -1
	var matches []string
	for i, id := range ids {
		if id == in {
			return i, nil
		}
		if strings.HasPrefix(id, in) {
			found = i
			matches = append(matches, id)
		}
	}
	switch len(matches) {
	case 0:
		return 0, fmt.Errorf("%s %s: %w", what, in, core.ErrNotFound)
	case 1:
		return found, nil
	}
	const shown = 4
	if len(matches) > shown {
		matches = append(matches[:shown], fmt.Sprintf("and %d more", len(matches)-shown))
	}
	return 0, fmt.Errorf("%s id %s is ambiguous: %s: %w", what, in, strings.Join(matches, ", "), core.ErrInvalidArgument)
}

// CheckPrefix refuses what cannot be an id or an id prefix, before anything
// is looked up.
func CheckPrefix(what, in string) error {
	in = strings.ToLower(strings.TrimSpace(in))
	if in == "" {
		return fmt.Errorf("no %s id given: %w", what, core.ErrInvalidArgument)
	}
	if len(in) < MinPrefix || strings.Trim(in, "0123456789abcdef") != "" {
		return fmt.Errorf("%s id %s: want hex, at least %d digits: %w", what, QuoteInput(in), MinPrefix, core.ErrInvalidArgument)
	}
	return nil
}
