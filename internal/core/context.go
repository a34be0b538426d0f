package core

import (
	"bytes"
	"fmt"
)

// Class says what kind of context a message travels in. Transport's
// authorizer decides it; budgets and leakage limits default per class, and
// the budget store records it, so its numeric values are a disk format.
type Class uint8

const (
	// ClassLink is the pairwise context of two devices (LinkContext).
	ClassLink Class = iota + 1
	// ClassContact is a context of two parties.
	ClassContact
	// ClassGroup is a context of more than two parties.
	ClassGroup
)

// Valid reports whether c is one of the three classes.
func (c Class) Valid() bool { return c >= ClassLink && c <= ClassGroup }

func (c Class) String() string {
	switch c {
	case ClassLink:
		return "link"
	case ClassContact:
		return "contact"
	case ClassGroup:
		return "group"
	}
	return fmt.Sprintf("class(%d)", c)
}

// LinkContext is the context two devices share with no other: traffic that
// belongs to no relationship yet (ping, handshakes) is charged to it. Both
// sides derive the same id, whatever the order of the arguments.
func LinkContext(a, b DeviceID) ContextID {
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	return ContextID(TaggedHash(TagLink, a[:], b[:]))
}

// AccountContext is the context an account's devices share among themselves:
// the sync of the account's authority namespace is charged to it, and its
// members are the authority namespace's.
func AccountContext(a AuthorityID) ContextID {
	return ContextID(TaggedHash(TagAccountContext, a[:]))
}
