package budget

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/transport"
)

// Accept is the receive-side check of a receipt that came with a message
// from r.Src, in a context of class c. In order, cheapest first:
//
//   - structure (ErrMalformed) and destination: r.Dst is this device
//     (ErrWrongDst);
//   - schedule: a version 2 receipt, whose epoch is the protocol's; a
//     version 1 receipt numbers epochs by its sender's local setting, comes
//     from an older aurad, and is refused with ErrEpochSchedule;
//   - epoch: within one epoch of the current one (ErrEpoch);
//   - signature by r.Src (ErrBadSignature); only then is a higher epoch
//     observed, so an unauthenticated receipt cannot move our epoch;
//   - chain of (context, src, epoch): the nonce is above the last accepted one
//     (ErrReplay otherwise) and, when it is the next one, prev is the hash of
//     the last accepted receipt, zero for the first (ErrChain);
//   - limit: src's cumulative cost in the context, over this device's budget
//     period holding the receipt's epoch, stays within the limit this device
//     grants it (ErrOverLimit). The sender budgets over its own period, named
//     in the receipt; if that is shorter than this device's, its view lets it
//     spend more than is granted here, and the refusal is ErrEpochSchedule,
//     saying so.
//
// A refused receipt changes nothing. An accepted one is queued for the store
// (chain head, cumulative cost, audit ring) in order before Accept returns, and
// group-committed in the background, so a restart cannot be fooled by replays
// of anything but the last receipts before a crash (see the end of Accept).
//
// The sender delivers a chain's receipts in nonce order on one stream, so a
// nonce beyond last+1 means frames were lost with a broken connection after
// their charge committed. Refusing the rest of the epoch for that would cut
// two honest devices off for up to an epoch after every dropped connection,
// so a gap is accepted: nonces still only grow (no replay), the receiver
// counts only the cost it saw (the sender paid more, never less), and Gaps
// records how often it happened. The hash link is checked wherever receipts
// are consecutive.
func (l *Ledger) Accept(ctx context.Context, r *Receipt, c core.Class) error {
	return l.accept(ctx, r, nil, c, true)
}

// AcceptCompact is Accept for a receipt that came compact (envelope protocol
// 4): r was rebuilt from the envelope, which the Noise channel
// authenticates, and is unsigned; cp is the checkpoint it carried, if any.
// Instead of r's signature it checks
//
//   - a checkpoint's signature by r.Src, over the chain through r
//     (ErrCheckpoint), and that it claims no less than this device received
//     of the chain (ErrCheckpoint): it is kept as the chain's evidence;
//   - without one, that fewer than transport.CheckpointEvery receipts in a
//     row came unsigned (ErrCheckpointMissing).
func (l *Ledger) AcceptCompact(ctx context.Context, r *Receipt, cp *Checkpoint, c core.Class) error {
	return l.accept(ctx, r, cp, c, false)
}

// accept is Accept (signed set: r carries its own signature) and
// AcceptCompact.
func (l *Ledger) accept(ctx context.Context, r *Receipt, cp *Checkpoint, c core.Class, signed bool) error {
	if r == nil {
		return fmt.Errorf("no receipt: %w", ErrMalformed)
	}
	if !c.Valid() {
		return fmt.Errorf("accept: class %d: %w", c, core.ErrInvalidArgument)
	}
	if err := r.check(); err != nil {
		return err
	}
	if r.Dst != l.self {
		return fmt.Errorf("receipt for %s: %w", r.Dst, ErrWrongDst)
	}
	if r.Period == 0 {
		return fmt.Errorf("version 1 receipt from %s: its epoch %d counts in units of the sender's local setting, not the protocol's %s epochs; the peer runs an older aurad: %w", r.Src, r.Epoch, EpochLength, ErrEpochSchedule)
	}
	if !l.epochs.InWindow(r.Epoch) {
		return fmt.Errorf("receipt of epoch %d, current %d: %w", r.Epoch, l.epochs.Current(), ErrEpoch)
	}
	if signed {
		if err := r.Verify(); err != nil {
			return err
		}
	}
	if cp != nil {
		if err := cp.Verify(); err != nil {
			return err
		}
	}
	l.epochs.Observe(r.Epoch)
	if err := ctx.Err(); err != nil {
		return err
	}

	k := Key{Context: r.Context, Peer: r.Src}
	rk := l.recvFor(k)
	rk.mu.Lock()
	if rk.stale {
		if err := l.reloadRecv(ctx, k, rk); err != nil {
			rk.mu.Unlock()
			return err
		}
	}
	prev := rk.chains[r.Epoch]
	var err error
	switch {
	case r.Nonce <= prev.nonce:
		err = fmt.Errorf("nonce %d, last %d: %w", r.Nonce, prev.nonce, ErrReplay)
	case r.Nonce == prev.nonce+1 && r.Prev != prev.head:
		err = fmt.Errorf("nonce %d names prev %s: %w", r.Nonce, r.Prev, ErrChain)
	case cp != nil && cp.Cumulative < prev.received+r.Cost:
		err = fmt.Errorf("checkpoint at nonce %d says %d paid, %d received: %w", r.Nonce, cp.Cumulative, prev.received+r.Cost, ErrCheckpoint)
	case !signed && cp == nil && prev.unchecked+1 >= transport.CheckpointEvery:
		err = fmt.Errorf("nonce %d: %d receipts since the last checkpoint: %w", r.Nonce, prev.unchecked+1, ErrCheckpointMissing)
	}
	if err == nil {
		limit := l.limit(k, c)
		got := periodReceived(rk.chains, r.Epoch, l.period)
		switch {
		case limit != 0 && got <= limit && r.Cost <= limit-got:
		case limit != 0 && r.Period < l.period:
			err = fmt.Errorf("cost %d on %d received, limit %d per %d epochs; the sender budgets per %d: %w", r.Cost, got, limit, l.period, r.Period, ErrEpochSchedule)
		default:
			err = fmt.Errorf("cost %d on %d received, limit %d per %d epochs: %w", r.Cost, got, limit, l.period, ErrOverLimit)
		}
	}
	if err != nil {
		rk.mu.Unlock()
		return fmt.Errorf("receipt %v epoch %d: %w", k, r.Epoch, err)
	}
	if r.Nonce > prev.nonce+1 {
		l.gaps.Add(1)
		l.log.Debug("receipt chain gap", zap.Stringer("src", r.Src), zap.Uint64("nonce", r.Nonce), zap.Uint64("last", prev.nonce))
	}
	// prev.received <= got, and got + r.Cost fits.
	next := recvRecord{class: c, received: prev.received + r.Cost, nonce: r.Nonce, head: r.Hash()}
	if !signed && cp == nil {
		next.unchecked = prev.unchecked + 1
	}
	keep := l.keepFrom()
	op := func(tx *journal.ExtTx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		stored, found, err := bs.getRecv(k, r.Epoch)
		if err != nil {
			return err
		}
		if (prev.nonce == 0 && found) || (prev.nonce != 0 && (!found || stored != prev)) {
			return fmt.Errorf("receipt %v: stored chain moved: %w", k, ErrStale)
		}
		if err := bs.recv.Put(recvKey(k, r.Epoch), next.encode()); err != nil {
			return err
		}
		if r.Nonce == 1 {
			if err := pruneRecv(bs, k, keep); err != nil {
				return err
			}
		}
		if cp != nil {
			if err := bs.checkpoints.Put(recvKey(k, r.Epoch), cp.Encode()); err != nil {
				return err
			}
		}
		return bs.putReceipt(k, dirReceived, r)
	}
	p, err := l.j.CommitAsync(ctx, journal.Txn{Ops: []journal.TxOp{op}})
	if err != nil {
		rk.mu.Unlock()
		return fmt.Errorf("accept %v: %w", k, err)
	}
	rk.chains[r.Epoch] = next
	rk.class = c
	for e := range rk.chains {
		if e < keep {
			delete(rk.chains, e) // out of the window and its periods for good
		}
	}
	rk.queued++
	ticket := rk.queued
	rk.mu.Unlock()

	// The new head is queued behind every earlier one, so the store moves
	// forward in order; the message need not wait for the fsync. Should the
	// device crash first, the sender's last few receipts may be accepted and
	// counted again after the restart: the receiver over-counts, never
	// under-counts, and handlers already see every message at least once.
	go func() {
		if err := wait(ctx, p); err != nil {
			l.recoverRecv(context.WithoutCancel(ctx), k, rk, ticket)
		}
	}()
	return nil
}

// keepFrom is the first epoch whose receive chains still matter: the window
// reaches back to the epoch before the current one, and the limit is checked
// over the whole budget period holding it.
func (l *Ledger) keepFrom() core.Epoch {
	cur := l.epochs.Current()
	if cur == 0 {
		return 0
	}
	return periodStart(cur-1, l.period)
}

// periodReceived is what a key's chains received in the budget period of k
// epochs holding e. Saturating: a lowered limit may have left more counted
// than any limit now allows, which must not wrap.
func periodReceived(chains map[core.Epoch]recvRecord, e core.Epoch, k uint32) uint64 {
	start := periodStart(e, k)
	var sum uint64
	for ce, rec := range chains {
		if ce >= start && ce-start < core.Epoch(k) {
			if sum += rec.received; sum < rec.received {
				return math.MaxUint64
			}
		}
	}
	return sum
}

// pruneRecv drops k's receive chains of epochs before keep (keepFrom): their
// receipts are out of the window and can only be replays, and their periods
// are over.
func pruneRecv(bs *buckets, k Key, keep core.Epoch) error {
	prefix := keyBytes(k)
	var old [][]byte
	c := bs.recv.Cursor()
	for key, _ := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, _ = c.Next() {
		if core.Epoch(binary.BigEndian.Uint64(key[keyLen:])) >= keep {
			break
		}
		old = append(old, bytes.Clone(key))
	}
	for _, key := range old {
		if err := bs.recv.Delete(key); err != nil {
			return err
		}
		// A chain's checkpoint goes with it (same key).
		if err := bs.checkpoints.Delete(key); err != nil {
			return err
		}
	}
	return nil
}

func (l *Ledger) recoverRecv(ctx context.Context, k Key, rk *recvState, ticket uint64) {
	rk.mu.Lock()
	defer rk.mu.Unlock()
	if rk.synced >= ticket {
		return
	}
	if err := l.reloadRecv(ctx, k, rk); err != nil {
		l.log.Warn("budget: reload after a failed commit", zapKey(k), zapErr(err))
	}
}

// reloadRecv reloads k's receive chains behind a barrier; rk's lock is held.
func (l *Ledger) reloadRecv(ctx context.Context, k Key, rk *recvState) error {
	rk.stale = true
	chains := map[core.Epoch]recvRecord{}
	err := l.barrier(ctx, func(bs *buckets) error {
		prefix := keyBytes(k)
		c := bs.recv.Cursor()
		for key, v := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, v = c.Next() {
			_, e, err := parseRecvKey(key)
			if err != nil {
				return err
			}
			rec, err := decodeRecvRecord(v)
			if err != nil {
				return err
			}
			chains[e] = rec
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reload %v: %w", k, err)
	}
	rk.chains, rk.stale, rk.synced = chains, false, rk.queued
	return nil
}
