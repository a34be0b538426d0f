// Package session is the choreography runtime: it runs sessions of the
// protocols package choreo projects, over the transport, with their records
// in the journal.
//
// It is a package of its own so that the language stays free of I/O.
// choreo parses, checks and projects protocols and steps local types through
// a Machine; this package adds what needs the network and the disk (libp2p
// through internal/transport, bbolt through internal/journal). Tools that
// only read protocol files, such as `auractl choreo check|project`, import
// choreo and link neither.
//
// A Runtime (runtime.go: its options and lifecycle) runs one goroutine and
// one Machine per session on each device (loop.go). Every send goes through
// Transport.Send with its annotations: capability, flow cost, and the facts
// committed with the charge: those the handler attaches, in any namespace
// the device is a member of, or else a TypeFact per journal_facts (send.go,
// facts.go). Every
// receive is checked against the machine (receive.go), and anything else
// ends the session with a typed AbortReason that the device noticing it
// sends to the other participants (abort.go). The first message to each
// device carries the session header (protocol name and hash, role map), so
// participants join by themselves (join.go); wire.go has the format.
// Callers start, follow, abort and list sessions through control.go and
// watch.go. Records live in the journal's ext/choreo.sessions bucket
// (store.go), and a restart aborts the sessions it finds running.
//
// The wire names (ProtocolSession, the choreo.* message types), the fact
// type and the record bucket keep the "choreo" names they had before the
// runtime moved here, so peers and data dirs from before the split still
// agree with this one.
package session
