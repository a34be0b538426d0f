package rpc

import (
	"crypto/subtle"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
)

// Token is one bearer credential of the TCP control listener: whoever
// presents Secret may call the methods whose permission is at most Level.
type Token struct {
	// Name identifies the token in refusals and in the token file; it is
	// empty for a token from the single-token file format.
	Name   string
	Level  Permission
	Secret string
}

// ParsePermission parses a level as the token file and `aurad token create
// --level` spell it.
func ParsePermission(s string) (Permission, error) {
	for _, p := range []Permission{Read, Write, Admin} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown level %q (want read, write or admin): %w", s, core.ErrInvalidArgument)
}

// Valid reports whether p is one of the levels a method may need.
func (p Permission) Valid() bool { return p >= Read && p <= Admin }

// matchToken finds the token whose secret was presented. Every configured
// token is compared, in constant time, so the time taken does not tell a
// caller how close a guess came or which token it hit.
func matchToken(tokens []Token, presented string) (Token, bool) {
	var found Token
	ok := false
	for _, t := range tokens {
		if subtle.ConstantTimeCompare([]byte(presented), []byte(t.Secret)) == 1 {
			found, ok = t, true
		}
	}
	return found, ok
}

// label names a token in a refusal without revealing its secret.
func (t Token) label() string {
	if t.Name == "" {
		return "this token"
	}
	return fmt.Sprintf("this token (%s)", t.Name)
}
