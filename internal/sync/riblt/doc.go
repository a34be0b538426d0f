// Package riblt is the coding layer of the sync tier that reconciles a
// namespace's fact ids with a peer's: a rateless invertible Bloom lookup table
// after Yang, Gilad and Alizadeh, "Practical Rateless Set Reconciliation"
// (SIGCOMM 2024, arXiv 2402.02668), written from the paper.
//
// A set of 32-byte ids defines an infinite stream of coded symbols. Symbol i
// holds the XOR of the ids mapped to it, the XOR of their keyed 64-bit hashes
// and their number. Every id maps to symbol 0, and to symbol i with
// probability 1/(1+i/2), so the first m symbols of two sets' streams, subtracted,
// peel into their symmetric difference once m is about 1.35 times its size,
// whatever the sets' sizes. Coding is linear, so one cached prefix of the stream
// (Encoder) is updated per insert in O(log prefix) and serves every peer and
// every difference size; the Decoder consumes the remote's symbols batch by
// batch and says when it is done.
//
// The 64-bit hash is SipHash-2-4 under a per-namespace key that only members
// hold. It is both the purity checksum and the seed of the id's index sequence,
// so someone without the key can neither predict where an id lands nor craft
// ids that collide, and the symbols and root fingerprint are meaningless to a
// non-member. Symbol sums still carry raw ids (a symbol with count 1 is an id in
// clear), so symbols go only to members, over the encrypted session.
//
// The package does no I/O: the caller keeps the Encoder next to the journal
// (updated in the same commit as each insert), exchanges Fingerprint and
// symbol Batches, and verifies every decoded id by fetching its fact (a
// malicious member can send symbols that decode to ids that do not exist).
package riblt
