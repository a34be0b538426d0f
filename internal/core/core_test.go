package core

import (
	"errors"
	"strings"
	"testing"
)

func TestNamespaceRoundTrip(t *testing.T) {
	for _, ns := range []Namespace{AuthorityNamespace(AuthorityID{1, 2}), ContextNamespace(ContextID{0xff})} {
		got, err := ParseNamespace(ns.String())
		if err != nil || got != ns {
			t.Fatalf("%s: %v %v", ns, got, err)
		}
	}
}

func TestParseNamespaceRejects(t *testing.T) {
	for _, s := range []string{"", "authority", "authority/", "group/" + strings.Repeat("0", 64), "context/" + strings.Repeat("g", 64), "context/" + strings.Repeat("0", 63)} {
		if _, err := ParseNamespace(s); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestTaggedHashSeparatesTags(t *testing.T) {
	if TaggedHash(TagFact, []byte("x")) == TaggedHash(TagAuthorityGenesis, []byte("x")) {
		t.Fatal("tags do not separate")
	}
	// The NUL after the tag keeps tag ‖ data boundaries unambiguous.
	if TaggedHash("ab", []byte("c")) == TaggedHash("a", []byte("bc")) {
		t.Fatal("tag boundary is ambiguous")
	}
}

func TestDefaultDataDir(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": "/h"}, "/h/.local/share/aura"},
		{map[string]string{"HOME": "/h", "XDG_DATA_HOME": "/x"}, "/x/aura"},
		{map[string]string{"HOME": "/h", "AURA_DATADIR": "/a/"}, "/a"},
	}
	for _, tc := range tests {
		got, err := DefaultDataDir(func(k string) string { return tc.env[k] })
		if err != nil || got != tc.want {
			t.Errorf("%v: %q %v", tc.env, got, err)
		}
	}
}

func TestParseContextRef(t *testing.T) {
	c := ContextID{0xab}
	for _, s := range []string{c.String(), "context/" + c.String()} {
		if got, err := ParseContextRef(s); err != nil || got != c {
			t.Fatalf("%q: %v %v", s, got, err)
		}
	}
	if _, err := ParseContextRef("authority/" + c.String()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatal("an authority namespace parsed as a context")
	}
}
