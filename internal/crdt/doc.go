// Package crdt offers named replicated objects (counters, registers, sets and
// maps) to API clients. It is a domain of its own, above the journal, because
// its objects are application data rather than Aura's own state: every update
// is a signed fact carrying a delta, and an object's state is the reducer's
// join of those deltas, the same on every device holding the same facts.
//
// How each kind stays a CRDT when its updates travel as facts:
//   - counter: a fact carries the amount added; the journal applies each fact
//     exactly once, so summing per author equals joining the per-author
//     components of a PN-counter.
//   - register: last-writer-wins, timestamped with the fact's own (lamport,
//     author), which the validator checks.
//   - set, map: the fact carries the lattice delta of an add-wins OR-set or an
//     observed-remove map of LWW registers. Deltas are computed from this
//     device's state including its own updates still being committed, so the
//     dots a device issues are never reused.
//
// An object's kind is fixed by its first update in (lamport, id) order; should
// two devices concurrently create one name with two kinds, every device shows
// the same winner and keeps the other's updates apart.
package crdt
