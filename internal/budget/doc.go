// Package budget is the flow-budget step of transport's guard chain and the
// receive-side receipt check: per (context, peer) flow budgets with epochs,
// signed and hash-chained receipts, and metadata-leakage budgets.
//
// The promise it keeps: no byte leaves the device unless a persisted budget
// paid for it, and a peer that does not pay is refused. What Aura's original
// got wrong and this package does properly: budgets are epoch-aware lattice
// states (a new epoch's spend never inherits the old one's), limit 0 and
// missing state deny (never "unbounded"), epochs actually rotate with time,
// receipts carry an explicit per-chain nonce and the hash of the previous
// receipt, and both ends enforce the limit.
//
// The pieces: State (one budget, a join-semilattice), Policy (limits as a
// meet of terms), Epochs (time-derived epochs that converge on the highest
// seen), Receipt (the signed proof of payment) and Leakage.
package budget
