package wot

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aura-p2p/aura/internal/core"
)

// Capability name limits: names are short identifiers such as
// "chat:message:send" or "sync/request", never free text.
const (
	MaxCapabilityLen   = 64
	MaxCapabilityNames = 64
)

// Capabilities is a set of capability names, kept sorted and without
// duplicates so that equal sets encode to equal bytes. The zero value is the
// empty set. Sets combine by Meet (intersection): combining never widens.
type Capabilities struct {
	names []string
}

// NewCapabilities validates, sorts and deduplicates names.
func NewCapabilities(names ...string) (Capabilities, error) {
	s := slices.Clone(names)
	slices.Sort(s)
	s = slices.Compact(s)
	if len(s) > MaxCapabilityNames {
		return Capabilities{}, fmt.Errorf("capabilities: %d names, at most %d: %w", len(s), MaxCapabilityNames, core.ErrInvalidArgument)
	}
	for _, n := range s {
		if err := ValidateCapability(n); err != nil {
			return Capabilities{}, err
		}
	}
	if len(s) == 0 {
		s = nil
	}
	return Capabilities{names: s}, nil
}

// ParseCapabilities reads a comma-separated list, as the CLI takes it.
func ParseCapabilities(list string) (Capabilities, error) {
	if strings.TrimSpace(list) == "" {
		return Capabilities{}, nil
	}
	parts := strings.Split(list, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return NewCapabilities(parts...)
}

// ValidateCapability accepts 1..64 bytes of [a-z0-9._:/-].
func ValidateCapability(name string) error {
	if name == "" || len(name) > MaxCapabilityLen {
		return fmt.Errorf("capability %q: want 1 to %d bytes: %w", name, MaxCapabilityLen, core.ErrInvalidArgument)
	}
	for i := 0; i < len(name); i++ {
		if !capChar(name[i]) {
			return fmt.Errorf("capability %q: byte %d is not one of a-z 0-9 . _ : / -: %w", name, i, core.ErrInvalidArgument)
		}
	}
	return nil
}

func capChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '/' || c == '-'
}

// Names returns the names in sorted order (a copy).
func (c Capabilities) Names() []string { return slices.Clone(c.names) }

// Len is the number of names.
func (c Capabilities) Len() int { return len(c.names) }

// Has reports whether name is in the set.
func (c Capabilities) Has(name string) bool {
	_, ok := slices.BinarySearch(c.names, name)
	return ok
}

// Meet is the intersection of c and o.
func (c Capabilities) Meet(o Capabilities) Capabilities {
	var out []string
	i, j := 0, 0
	for i < len(c.names) && j < len(o.names) {
		switch strings.Compare(c.names[i], o.names[j]) {
		case -1:
			i++
		case 1:
			j++
		default:
			out = append(out, c.names[i])
			i++
			j++
		}
	}
	return Capabilities{names: out}
}

// SubsetOf reports whether every name of c is in o.
func (c Capabilities) SubsetOf(o Capabilities) bool {
	j := 0
	for _, n := range c.names {
		for j < len(o.names) && o.names[j] < n {
			j++
		}
		if j == len(o.names) || o.names[j] != n {
			return false
		}
		j++
	}
	return true
}

// Equal reports whether c and o hold the same names.
func (c Capabilities) Equal(o Capabilities) bool { return slices.Equal(c.names, o.names) }

// missing returns the first name of c that o lacks, for error messages.
func (c Capabilities) missing(o Capabilities) string {
	for _, n := range c.names {
		if !o.Has(n) {
			return n
		}
	}
	return ""
}

func (c Capabilities) String() string { return strings.Join(c.names, ",") }
