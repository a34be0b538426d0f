package safetext

import (
	"errors"
	"strings"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		want string // "" accepts
	}{
		{"hits", ""},
		{"größe", ""},
		{"שלום", ""}, // right-to-left script is fine; only the controls are not
		{"a b", ""},
		{"\uFFFD", ""},
		{"exe\u202Etxt", "object name has U+202E (a format character, Cf) at byte 3"},
		{"\u2066x", "object name has U+2066 (a format character, Cf) at byte 0"},
		{"a\u200Bb", "object name has U+200B (a format character, Cf) at byte 1"},
		{"a\u200Fb", "object name has U+200F (a format character, Cf) at byte 1"},
		{"a\x07b", "object name has U+0007 (a control character, Cc) at byte 1"},
		{"a\u0085b", "object name has U+0085 (a control character, Cc) at byte 1"},
		{"a\uE000b", "object name has U+E000 (a private-use character, Co) at byte 1"},
		{"a\u2028b", "object name has U+2028 (a line separator, Zl) at byte 1"},
		{"a\u2029b", "object name has U+2029 (a paragraph separator, Zp) at byte 1"},
		{"a\xffb", "object name is not valid UTF-8 (byte 1)"},
		{"a\xed\xa0\x80b", "object name is not valid UTF-8 (byte 1)"}, // an encoded surrogate
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckName("object name", tc.name)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, core.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q (invalid argument)", err, tc.want)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	tests := []struct {
		in, keep, want string
	}{
		{"plain", "", "plain"},
		{"exe\u202Etxt", "", `exe\u202etxt`},
		{"a\tb\nc\rd", "\t\n", "a\tb\nc\\u000dd"},
		{"a\tb", "", `a\u0009b`},
		{"\U000F0000", "", `\U000f0000`},
		{"bad\xffbyte", "", `bad\xffbyte`},
		{"real \uFFFD stays", "", "real \uFFFD stays"},
		{"שלום", "", "שלום"},
	}
	for _, tc := range tests {
		if got := Escape(tc.in, tc.keep); got != tc.want {
			t.Errorf("Escape(%q, %q) = %q, want %q", tc.in, tc.keep, got, tc.want)
		}
	}
}
