package rpc

import (
	"errors"
	"strings"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

func TestResolvePrefix(t *testing.T) {
	ids := []string{"0123456789abcdef", "0123456700000000", "fedcba9876543210"}
	for _, tc := range []struct {
		in      string
		want    int
		err     error
		mention string
	}{
		{"0123456789abcdef", 0, nil, ""},
		{"FEDCBA98", 2, nil, ""},
		{"012345678", 0, nil, ""},
		{"01234567", 0, core.ErrInvalidArgument, "0123456700000000"},
		{"0123456", 0, core.ErrInvalidArgument, "at least 8"},
		{"0123456x9", 0, core.ErrInvalidArgument, "want hex"},
		{"", 0, core.ErrInvalidArgument, "no thing id"},
		{"aaaaaaaa", 0, core.ErrNotFound, "aaaaaaaa"},
	} {
		got, err := ResolvePrefix("thing", tc.in, ids)
		if tc.err == nil {
			if err != nil || got != tc.want {
				t.Errorf("%q: %d, %v; want %d", tc.in, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%q: %v; want %v mentioning %q", tc.in, err, tc.err, tc.mention)
		}
	}
}
