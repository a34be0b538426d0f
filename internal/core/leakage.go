package core

import "fmt"

// Observer is a class of party that learns metadata from a send. Its values
// index Leakage, which is stored and signed in that order.
type Observer uint8

const (
	// ObserverExternal is anyone on the network path (a send reveals that
	// two devices talk, when, and how much).
	ObserverExternal Observer = iota
	// ObserverNeighbor is relays and peers that forward or see routing
	// metadata.
	ObserverNeighbor
	// ObserverInGroup is the other members of the context, who see who talks
	// to whom.
	ObserverInGroup
)

func (o Observer) String() string {
	switch o {
	case ObserverExternal:
		return "external"
	case ObserverNeighbor:
		return "neighbor"
	case ObserverInGroup:
		return "in_group"
	}
	return fmt.Sprintf("observer(%d)", uint8(o))
}

// Leakage is a metadata-leakage amount per observer class, indexed by
// Observer: the cost of one send, a consumed total, or a limit. Senders price
// it, transport carries it into the charge, and budget enforces it, so all
// three share this one type.
type Leakage [3]uint64
