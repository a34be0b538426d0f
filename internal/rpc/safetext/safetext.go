// Package safetext keeps invisible and reordering characters out of the names
// the API accepts, and off the terminal when such text arrives anyway (stored
// before the check existed, or replicated from a peer).
//
// A bidirectional override (U+202E) in an object name makes a table show
// "txt.exe" for "exe.txt"; a zero-width space makes two different names look
// the same. Names are for people to read and type, so they may hold none of
// these. Values (register contents, set elements) are data and stay as given;
// auractl escapes them when it prints a table.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aura-p2p/aura/internal/core"
)

// hiddenCategories are the Unicode general categories a name may not contain.
// The bidi controls (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069) are
// all in Cf. Cs cannot occur in valid UTF-8 but is listed for completeness.
var hiddenCategories = []struct {
	table *unicode.RangeTable
	name  string
}{
	{unicode.Cc, "a control character, Cc"},
	{unicode.Cf, "a format character, Cf"},
	{unicode.Co, "a private-use character, Co"},
	{unicode.Cs, "a surrogate, Cs"},
	{unicode.Zl, "a line separator, Zl"},
	{unicode.Zp, "a paragraph separator, Zp"},
}

// category names the hidden category of r, or "" if r shows as itself.
func category(r rune) string {
	for _, c := range hiddenCategories {
		if unicode.Is(c.table, r) {
			return c.name
		}
	}
	return ""
}

// Hidden reports whether r is invisible or changes how the text around it is
// displayed: a character of category Cc, Cf, Co, Cs, Zl or Zp.
func Hidden(r rune) bool { return category(r) != "" }

// CheckName accepts a name made of valid UTF-8 without hidden characters.
// what says which name it is ("object name"); the error names the first
// offending code point and where it is, never echoing the name itself, whose
// display is exactly the problem.
func CheckName(what, name string) error {
	for i, r := range name {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(name[i:]); size <= 1 {
				return fmt.Errorf("%s is not valid UTF-8 (byte %d): %w", what, i, core.ErrInvalidArgument)
			}
		}
		if c := category(r); c != "" {
			return fmt.Errorf("%s has %U (%s) at byte %d; names may not contain invisible or reordering characters: %w",
				what, r, c, i, core.ErrInvalidArgument)
		}
	}
	return nil
}

// Escape returns s with every hidden character written as \uXXXX (or
// \UXXXXXXXX) and every byte that is not valid UTF-8 as \xXX, except the
// characters in keep, which a caller may need for its own layout (a table's
// tabs and newlines).
func Escape(s, keep string) string {
	clean := true
	for i, r := range s {
		if (r == utf8.RuneError && !validAt(s, i)) || (Hidden(r) && !strings.ContainsRune(keep, r)) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !validAt(s, i):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case Hidden(r) && !strings.ContainsRune(keep, r):
			if r > 0xffff {
				fmt.Fprintf(&b, `\U%08x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// validAt tells a real U+FFFD at s[i:] from the RuneError that range yields for
// a byte that does not decode.
func validAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size > 1
}
