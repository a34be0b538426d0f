// Package budget is the flow-budget step of transport's guard chain and the
// receive-side receipt check: per (context, peer) flow budgets with epochs,
// hash-chained receipts signed in checkpoints (checkpoint.go), and
// metadata-leakage budgets, persisted in
// the journal so that a charge commits atomically with the facts of the
// message it pays for.
//
// The promise it keeps: no byte leaves the device unless a persisted budget
// paid for it, and a peer that does not pay is refused. What Aura's original
// got wrong and this package does properly:
//
//   - Budgets are period-aware lattice states (State): a later budget period
//     wins outright, so a new period never inherits the old one's spend.
//   - Limit 0 and missing state deny, never mean "unbounded".
//   - Epochs are a protocol constant: epoch n is the n-th EpochLength (5
//     minutes) since the Unix epoch on every device, whatever it is
//     configured with, so peers agree on epoch numbers and a stored epoch
//     never changes meaning. They advance with time (Epochs); a peer's
//     higher epoch is adopted, but at most one ahead of the wall clock, so a
//     peer cannot drag us arbitrarily far.
//   - What a device configures is its budget period (Config.EpochDuration),
//     a whole number of epochs: a flow budget is replenished when its period
//     turns, and every charge rotates its budget lazily. The period is local
//     policy, like the limit: each receipt names its sender's, and the
//     receiver checks its own limit over its own periods. Changing it carries
//     each spend into the new period holding its epoch.
//   - Receipts carry an explicit nonce per (context, src, dst, epoch) and
//     the hash of the previous receipt (a chain), and the receiver checks
//     both, plus the cumulative cost against the limit it grants the sender:
//     budgets are enforced at both ends.
//   - Limits are a meet of policy terms (Policy): adding a term never widens.
//
// # Units and defaults
//
// Costs are abstract flow units priced by the sending protocol (a small
// control message costs 1; bulk data about one more per KiB). Default limits
// per budget period: link context 64 Ki, contact 1 Mi, group 4 Mi (per
// peer). Leakage is charged per (context, epoch) and observer class
// (external, neighbor, in-group), with the same defaults per observer class.
// An epoch lasts 5 minutes, and so does the budget period by default (up to
// a day); receipts are accepted one epoch either side of the current one.
//
// # Charge: the guard-chain steps 2 and 3
//
// Under the key's lock: rotate if the epoch (the receipt chain) or the
// budget period (the spend) ended, check flow then leakage headroom (a
// denial returns with no side effect at all), sign the next receipt, and
// queue one journal Txn holding the caller's facts and a TxOp writing the
// new chain head, spend, leakage and audit copy of the receipt;
// queueing under the lock makes commit order equal nonce order without
// holding the lock through the fsync. Charge returns the receipt once the
// Txn is durable. Each TxOp checks that the store holds exactly the chain
// state it was built on, so if an earlier commit of the chain failed, the
// later ones fail too (and are rebuilt and retried) instead of persisting a
// chain with a hole; after a failure the key is reloaded behind a barrier, a
// read queued after everything in flight. Leakage is shared by the keys of a
// context and merges by max, which can only over-count (fail closed).
//
// # Audit
//
// When a key's epoch ends (on its next charge, or Sweep for quiet keys, to
// be called once an epoch), one fact of type aura.budget.epoch/v1 summarises
// the epoch's chain (count, total, last nonce and last hash, which commits
// to every receipt of it) and one aura.budget.leakage/v1 the context's
// leakage, in the device's authority namespace, committed atomically with
// the rotation. Validators registers
// their validators with the journal. The most recent receipts of each key are
// kept in a bounded ring for inspection.
//
// # Storage
//
// The journal's extension bucket ext/budget (integers big-endian; ctx, peer
// and src are 32-byte ids):
//
//	ext/budget/
//	  meta/
//	    layout_version            -> 1 byte: 3
//	  send/                        sender side, one per (context, peer): the
//	                               chain of its latest epoch and the spend of
//	                               that epoch's budget period
//	    ctx ‖ peer                -> version(1)=2 class(1) epoch(8) period(4)
//	                                 spent(8) nonce(8) cost(8) head(32)
//	  recv/                        receiver side, one per chain
//	    ctx ‖ src ‖ epoch(8)      -> version(1)=2 class(1) received(8) nonce(8)
//	                                 head(32) unchecked(4)  (epochs before the
//	                                 budget period of current-1 pruned)
//	  checkpoints/                 the latest checkpoint src signed of each
//	                               chain (compact receipts), pruned with it
//	    ctx ‖ src ‖ epoch(8)      -> Checkpoint encoding
//	  leak/                        one per context, its latest epoch
//	    ctx                       -> version(1) class(1) epoch(8) external(8)
//	                                 neighbor(8) in_group(8)
//	  limits/                      operator overrides (SetLimit)
//	    ctx ‖ peer                -> version(1) limit(8)
//	  receipts/                    audit ring: ReceiptRing per direction and
//	                               epoch, the two latest epochs per key
//	    ctx ‖ peer ‖ dir(1) ‖ epoch(8) ‖ nonce(8) -> Receipt encoding
//	                               (dir 1 = sent to peer, 2 = received from it)
//
// Every epoch stored is a protocol epoch; the one period stored, in the
// send record, is the one its spend covers. Nothing else in Aura reads these
// buckets; a layout change bumps layout_version, Open migrates an older one
// (migrate.go: layout 1 numbered epochs in units of the configured length;
// layout 2's receive records had no unchecked count) and refuses a newer
// one.
package budget
