package core

import (
	"fmt"
	"strings"
)

// NamespaceKind says whose facts a namespace holds and so who may see them.
type NamespaceKind uint8

const (
	// NamespaceAuthority holds an account's own facts, visible to its devices.
	NamespaceAuthority NamespaceKind = 1
	// NamespaceContext holds a relational context's facts, visible to its participants.
	NamespaceContext NamespaceKind = 2
)

// Namespace is where a fact lives: authority/<id> or context/<id>. It is a
// comparable value so it can key maps and be compared with ==.
type Namespace struct {
	Kind NamespaceKind
	ID   Hash
}

// AuthorityNamespace is the namespace of an authority's own facts.
func AuthorityNamespace(a AuthorityID) Namespace {
	return Namespace{Kind: NamespaceAuthority, ID: Hash(a)}
}

// ContextNamespace is the namespace of a relational context.
func ContextNamespace(c ContextID) Namespace {
	return Namespace{Kind: NamespaceContext, ID: Hash(c)}
}

func (n Namespace) String() string {
	switch n.Kind {
	case NamespaceAuthority:
		return "authority/" + n.ID.String()
	case NamespaceContext:
		return "context/" + n.ID.String()
	default:
		return fmt.Sprintf("invalid(%d)/%s", n.Kind, n.ID)
	}
}

// Valid reports whether n names one of the two kinds of namespace.
func (n Namespace) Valid() bool {
	return n.Kind == NamespaceAuthority || n.Kind == NamespaceContext
}

// ParseNamespace decodes "authority/<hex>" or "context/<hex>".
func ParseNamespace(s string) (Namespace, error) {
	kind, id, ok := strings.Cut(s, "/")
	if !ok {
		return Namespace{}, fmt.Errorf("namespace %q: want authority/<id> or context/<id>: %w", s, ErrInvalidArgument)
	}
	var n Namespace
	switch kind {
	case "authority":
		n.Kind = NamespaceAuthority
	case "context":
		n.Kind = NamespaceContext
	default:
		return Namespace{}, fmt.Errorf("namespace %q: unknown kind %q (want authority or context): %w", s, kind, ErrInvalidArgument)
	}
	h, err := ParseHash(id)
	if err != nil {
		return Namespace{}, fmt.Errorf("namespace %q: %w", s, err)
	}
	n.ID = h
	return n, nil
}
