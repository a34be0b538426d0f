// Package journal is the device's store of signed facts: validation, durable
// group-committed appends, incrementally maintained reductions and watches.
//
// A fact is a signed, immutable record in a namespace (authority/<id> or
// context/<id>). Its body is encoded once, canonically, by its author (see
// EncodeBody); the author's Ed25519 signature covers exactly those bytes and the
// FactID is the tagged SHA-256 of them. Bytes are stored and shipped verbatim.
// The set of facts only grows; merge is set union.
//
// # Storage
//
// One bbolt file, bucket tree (all integers big-endian; ns is the 33-byte
// namespace key kind(1) ‖ id(32)):
//
//	meta/
//	  schema_version  -> uint32
//	  created_by      -> string: "aurad <version>"
//	  last_seq        -> uint64: seq of the last committed fact
//	  fact_count      -> uint64
//	namespaces/
//	  <ns>            -> namespace record (see encodeNSRecord): genesis id,
//	                     genesis member device ids (sorted), max lamport, fact count
//	members/          (schema 2)
//	  <ns>/
//	    device(32)    -> lamport(8) ‖ id(32) of the least fact that admitted it
//	                     (the genesis for founding members)
//	facts/
//	  <ns>/           (one bucket per namespace)
//	    lamport(8) ‖ id(32) -> SignedFact bytes, verbatim
//	sums/             (schema 3)
//	  <ns>/
//	    lamport(8) ‖ id(32) -> CRC-64 (ECMA) of the SignedFact bytes as
//	                     written, once their signature was verified
//	ids/
//	  id(32)          -> ns(33) ‖ lamport(8) ‖ seq(8)
//	log/
//	  seq(8)          -> ns(33) ‖ lamport(8) ‖ id(32)   (commit order; watch cursors)
//	state/
//	  <reducer>/
//	    <ns>/
//	      <key>       -> high-water lamport(8) ‖ id(32) ‖ reduced state
//	rindex/           (only for order-sensitive reducers)
//	  <reducer>/
//	    <ns>/
//	      len(key)(2) ‖ key ‖ lamport(8) ‖ id(32) -> empty
//	ext/
//	  <owner>/        buckets of packages that commit with facts atomically
//	                  (budgets, receipts); owned and documented by those packages
//
// A change to this tree needs a new schema version and a migration in
// migrations.go; Open refuses a file written by a newer schema.
//
// # Writes
//
// One writer goroutine owns every write transaction. It drains the queue of
// pending appends into one bbolt transaction and commits it with one fsync, so an
// append returns only once durable while many appends share the cost of a
// commit. Each request in a batch is all-or-nothing: a fact that fails
// validation changes nothing, and its neighbours in the batch still commit.
//
// # Membership
//
// Who may write to a namespace is a reduction, not a record: the genesis
// members plus every device a membership fact of an accepted author adds,
// kept in members/<ns> by the insert of that fact (membership.go). Each
// namespace kind has one MembershipSource deciding which facts those are:
// authority namespaces are fixed by their genesis (until the commitment tree),
// context namespaces grow by TypeContextParticipants facts. A fact from a peer
// (Receive, ReceiveBatch) whose namespace or author is not known yet waits in a
// bounded, in-memory orphan pool (orphans.go); the writer inserts it in the
// same transaction as the fact that founds its namespace or admits its
// author, right after that fact. ReceiveBatch verifies a peer's facts on
// every core and queues them for group commit in order (receive_batch.go).
//
// # Ordered ranges
//
// For range-based set reconciliation, Range iterates a namespace's facts in
// (lamport, id) order over [lo, hi), and RangeSummary, RangeSplit and
// RangeKeys answer from the namespace's range aggregate (ranges.go,
// aggregate.go): an in-memory B+tree over the namespace's fact keys whose
// nodes carry the count and the sum of ids mod 2^256 below them, so a range's
// count and Fingerprint cost O(log n). The aggregate is not stored: it is built
// from the facts/<ns> keys on the namespace's first range query (about 90 ms
// and 41 bytes a fact for a million facts) and the writer adds each commit's
// facts to it after the commit and before watchers hear of them.
package journal
