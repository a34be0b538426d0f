package rpc

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aura-p2p/aura/internal/core"
)

func TestQuoteInput(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"short", `"short"`},
		{strings.Repeat("a", 64), `"` + strings.Repeat("a", 64) + `"`},
		{strings.Repeat("a", 65), `"` + strings.Repeat("a", 64) + `"…(65 bytes)`},
		// 63 ASCII bytes then a 2-byte character: the cut keeps whole characters.
		{strings.Repeat("a", 63) + "ééé", `"` + strings.Repeat("a", 63) + `"…(69 bytes)`},
		{"bidi\u202Eand\x00nul", `"bidi\u202eand\x00nul"`},
	}
	for _, tc := range tests {
		if got := QuoteInput(tc.in); got != tc.want {
			t.Errorf("QuoteInput(%.20q…) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestShortenEcho(t *testing.T) {
	long := strings.Repeat("z", 1000)
	shown := `"` + strings.Repeat("z", 64) + `"…(1000 bytes)`
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"quoted", fmt.Errorf("namespace %q: %w", long, core.ErrInvalidArgument), "namespace " + shown + ": invalid argument"},
		{"bare", fmt.Errorf("protocol %s: %w", long, core.ErrNotFound), "protocol " + shown + ": not found"},
		{"token", fmt.Errorf("unknown protocol %s: %w", long, core.ErrInvalidArgument), "unknown protocol " + shown + ": invalid argument"},
		{"not echoed", fmt.Errorf("bad: %w", core.ErrInvalidArgument), "bad: invalid argument"},
		{"status", status.Errorf(codes.NotFound, "no key %q", long), "rpc error: code = NotFound desc = no key " + shown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := long
			if tc.name == "token" {
				input = "/ip4/" + long + "/tcp/1"
			}
			err := shortenEcho(tc.err, []string{input})
			if err.Error() != tc.want {
				t.Fatalf("got %q, want %q", err, tc.want)
			}
			if tc.name == "status" {
				if status.Code(err) != codes.NotFound {
					t.Fatalf("code %v", status.Code(err))
				}
				return
			}
			if !errors.Is(err, core.ErrInvalidArgument) && !errors.Is(err, core.ErrNotFound) {
				t.Fatal("the sentinel is lost")
			}
		})
	}
}
