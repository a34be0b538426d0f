// Package lattice holds the semilattices Aura's CRDT objects are made of, and
// the coordinators that replicate them.
//
// Every type here is a value: methods never mutate their receiver or their
// arguments (the only exception is UnmarshalBinary, which fills its pointer
// receiver as encoding.BinaryUnmarshaler requires). Internal maps and slices
// are shared between values and must never be written after construction;
// that is what lets Join reuse unchanged parts instead of copying them.
//
// The zero value of every join type is its bottom element, so an OR-Map can
// create a nested value for a new key without a factory. The meet types make
// their zero value the fail-closed element: an empty capability set grants
// nothing, and Top ("all capabilities") must be asked for explicitly.
//
// Mutators follow the delta-state CRDT design: a mutator is a pure function
// of the current state that returns a delta, itself a value of the same type.
// The caller joins the delta into its state (DeltaCoordinator does this) and
// ships the delta; a peer joins it too. Because deltas are ordinary states,
// they have the same binary encoding as states.
//
// Determinism: nothing observable depends on Go map order, the wall clock or
// randomness. Iteration helpers return sorted slices; Equal compares contents;
// encodings sort their keys so that equal values encode to equal bytes. This
// matters because the daemon reduces facts into these values on every replica
// and persists the encoded state, and replicas must agree byte for byte.
//
// Encoding: each value encodes as a two-byte header (type tag, format version)
// followed by its body; counts and lengths are minimal unsigned varints. The
// decoders accept exactly the bytes the encoders produce: trailing bytes,
// truncation, unsorted or duplicate keys, non-minimal varints and broken
// invariants are rejected with errors wrapping core.ErrInvalidArgument, and
// no allocation is sized from a length field beyond what the remaining input
// could hold.
package lattice
