package budget

import (
	"errors"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/transport"
)

// Sentinel errors. Each wraps the core sentinel the API edge maps to a gRPC
// code; callers branch on these with errors.Is. The receive-side errors are
// distinct so that transport can count refused receipts per reason (Reason).
var (
	// ErrExhausted: the charge does not fit the (context, peer) flow budget,
	// or the budget denies (limit 0, no state). Nothing was changed.
	ErrExhausted = fmt.Errorf("flow budget exhausted: %w", core.ErrResourceExhausted)
	// ErrLeakageExhausted: the send would exceed a metadata-leakage budget of
	// its context. It is a kind of ErrExhausted: refused the same way.
	ErrLeakageExhausted = fmt.Errorf("leakage budget: %w", ErrExhausted)

	// ErrMalformed: receipt or record bytes that do not decode, or a receipt
	// whose fields contradict each other.
	ErrMalformed = fmt.Errorf("malformed receipt: %w", core.ErrInvalidArgument)
	// ErrBadSignature: the receipt is not signed by its src device.
	ErrBadSignature = fmt.Errorf("receipt signature does not verify: %w", core.ErrUnauthenticated)
	// ErrWrongDst: the receipt pays another device, not this one.
	ErrWrongDst = fmt.Errorf("receipt is for another device: %w", core.ErrInvalidArgument)
	// ErrEpoch: the receipt's epoch is outside the one-epoch skew window.
	ErrEpoch = fmt.Errorf("receipt epoch outside the window: %w", core.ErrFailedPrecondition)
	// ErrEpochSchedule: the receipt follows another budget schedule: a
	// version 1 receipt, whose epoch counts in units of its sender's local
	// setting (a peer on an older aurad), or a sender over the limit because
	// its budget period is shorter than the one this device grants it over.
	// It is transport's sentinel, so that the receive path counts it apart.
	ErrEpochSchedule = transport.ErrEpochSchedule
	// ErrReplay: the receipt's nonce was already accepted in its chain.
	ErrReplay = fmt.Errorf("receipt replayed: %w", core.ErrAlreadyExists)
	// ErrChain: the receipt's prev is not the hash of the last accepted
	// receipt: the sender forked its chain.
	ErrChain = fmt.Errorf("receipt does not extend the chain: %w", core.ErrInvalidArgument)
	// ErrOverLimit: the sender's cumulative cost in the (context, epoch) would
	// exceed the limit this device grants it.
	ErrOverLimit = fmt.Errorf("sender over the limit granted to it: %w", core.ErrResourceExhausted)

	// ErrCorrupt: stored budget bytes do not decode. Never caused by a peer.
	ErrCorrupt = fmt.Errorf("budget store corrupt: %w", core.ErrDataLoss)
	// ErrStale: a write was built on a state the store no longer holds (an
	// earlier write of the same chain failed). The ledger reloads and the
	// caller may retry.
	ErrStale = fmt.Errorf("budget state changed underneath: %w", core.ErrAborted)
)

// Reason names the receive-side refusal err stands for, for counters and
// logs: "malformed", "bad_signature", "wrong_dst", "epoch",
// "epoch_schedule_mismatch", "replay", "chain", "over_limit", "checkpoint",
// "checkpoint_missing", or "other".
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "other"
}

var reasons = []struct {
	err  error
	name string
}{
	{ErrMalformed, "malformed"},
	{ErrBadSignature, "bad_signature"},
	{ErrWrongDst, "wrong_dst"},
	{ErrEpoch, "epoch"},
	{ErrEpochSchedule, transport.DropEpochSchedule},
	{ErrReplay, "replay"},
	{ErrChain, "chain"},
	{ErrOverLimit, "over_limit"},
	{ErrCheckpoint, "checkpoint"},
	{ErrCheckpointMissing, "checkpoint_missing"},
}
