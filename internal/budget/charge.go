package budget

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Charge is the flow-budget step of the guard chain, followed by the
// journal-coupling step. It charges cost to k (a context of class c) and
// leak to k's context, makes the next receipt of k's chain, and commits the
// new state, the receipt and facts in one group-committed transaction. It
// returns the receipt, unsigned (see SealFor), only once all of it is
// durable.
//
// A denial (ErrExhausted, ErrLeakageExhausted) has no side effect at all: no
// state changes, no nonce is consumed, nothing is written. A commit failure
// returns the error after reloading k from the store, so the chain and the
// spend in memory are what is durable.
//
// When k's stored epoch has ended, the charge first rotates it; with audit
// enabled the rotation commits, ahead of the charge, the summary facts of the
// epoch that ended (see Sweep for keys that go quiet).
//
// A charge that failed only because an earlier charge of the same key failed
// (its commit was built on that one, ErrStale) is rebuilt and retried, a few
// times: one caller's bad facts do not fail its neighbours' sends.
func (l *Ledger) Charge(ctx context.Context, k Key, c core.Class, cost uint64, leak core.Leakage, facts []*journal.SignedFact) (*Receipt, error) {
	return l.ChargeQueued(ctx, k, c, cost, leak, facts, nil)
}

// ChargeQueued is Charge that also calls queued, if set, as soon as the
// receipt has its nonce and its commit is queued, before it is durable: a
// charge of k started after that takes a later nonce. A caller can so keep
// many charges of one chain in flight, sharing group commits, in the order
// it starts them. queued is not called for a denial; after a retry (an
// earlier charge's commit failed) it may have been called for a nonce the
// receipt no longer has, and later charges may have overtaken this one.
func (l *Ledger) ChargeQueued(ctx context.Context, k Key, c core.Class, cost uint64, leak core.Leakage, facts []*journal.SignedFact, queued func()) (*Receipt, error) {
	const attempts = 4
	for i := 1; ; i++ {
		r, err := l.chargeOnce(ctx, k, c, cost, leak, facts, queued)
		if err == nil || !errors.Is(err, ErrStale) || i == attempts || ctx.Err() != nil {
			return r, err
		}
	}
}

func (l *Ledger) chargeOnce(ctx context.Context, k Key, c core.Class, cost uint64, leak core.Leakage, facts []*journal.SignedFact, queued func()) (*Receipt, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("charge %v: class %d: %w", k, c, core.ErrInvalidArgument)
	}
	if k.Peer == l.self {
		return nil, fmt.Errorf("charge %v: a device does not pay itself: %w", k, core.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sk := l.sendFor(k)
	sk.mu.Lock()
	if sk.stale {
		if err := l.reloadSend(ctx, k, sk); err != nil {
			sk.mu.Unlock()
			return nil, err
		}
	}
	old := sk.rec
	cur := old.at(max(l.epochs.Current(), old.epoch), l.period)
	st, err := State{Limit: l.limit(k, c), Spent: cur.spent, Epoch: periodStart(cur.epoch, cur.period)}.Charge(cost)
	if err == nil && cur.nonce == math.MaxUint64 {
		err = fmt.Errorf("nonces used up: %w", ErrExhausted)
	}
	if err != nil {
		sk.mu.Unlock()
		return nil, fmt.Errorf("charge %v: %w", k, err)
	}
	// The receipt is not signed here: the wire decides, once the frame
	// leaves, whether it travels signed whole (an older peer) or compact
	// with or without a checkpoint (Receipt.Seal, SealCompact).
	r := &Receipt{Context: k.Context, Src: l.self, Dst: k.Peer, Epoch: cur.epoch, Period: cur.period, Cost: cost, Nonce: cur.nonce + 1, Prev: cur.head}
	if err := r.check(); err != nil {
		sk.mu.Unlock()
		return nil, err
	}
	// cur.cost <= cur.spent, and st.Spent = cur.spent + cost fits.
	next := sendRecord{class: c, epoch: cur.epoch, period: cur.period, spent: st.Spent, nonce: r.Nonce, cost: cur.cost + cost, head: r.Hash()}
	r.cumulative = next.cost

	lc := l.leakFor(k.Context)
	lc.mu.Lock()
	unlock := func() { lc.mu.Unlock(); sk.mu.Unlock() }
	if lc.stale {
		if err := l.reloadLeak(ctx, k.Context, lc); err != nil {
			unlock()
			return nil, err
		}
	}
	lold := lc.rec
	lcur := lold
	if cur.epoch > lold.epoch {
		lcur = leakRecord{class: c, epoch: cur.epoch}
	}
	// If another key already moved the context to a later epoch, the leak
	// counts against that one: conservative.
	lnext, err := chargeLeak(lcur, leak, l.policy.LeakageLimit(k.Context, c))
	if err != nil {
		unlock()
		return nil, fmt.Errorf("charge %v: %w", k, err)
	}
	lnext.class = c

	rot, err := l.rotation(k, old, cur.epoch, lold, lcur.epoch)
	if err != nil {
		unlock()
		return nil, err
	}
	audit := l.auditing()
	op := func(tx *journal.ExtTx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		stored, found, err := bs.getSend(k)
		if err != nil {
			return err
		}
		if !extends(stored, found, cur, r.Nonce, audit) {
			return fmt.Errorf("charge %v: nonce %d does not follow the stored chain: %w", k, r.Nonce, ErrStale)
		}
		if err := bs.send.Put(keyBytes(k), next.encode()); err != nil {
			return err
		}
		if err := bs.putReceipt(k, dirSent, r); err != nil {
			return err
		}
		if leak == (core.Leakage{}) {
			return nil
		}
		return mergeLeak(bs, k.Context, lnext, audit)
	}

	var pRot *journal.Pending
	if rot != nil {
		if pRot, err = l.j.CommitAsync(ctx, *rot); err != nil {
			unlock()
			return nil, fmt.Errorf("charge %v: %w", k, err)
		}
	}
	p, err := l.j.CommitAsync(ctx, journal.Txn{Facts: facts, Ops: []journal.TxOp{op}})
	if err != nil {
		if pRot != nil {
			// The rotation may still commit; memory cannot tell.
			sk.stale, lc.stale = true, true
		}
		unlock()
		return nil, fmt.Errorf("charge %v: %w", k, err)
	}
	sk.rec = next
	sk.queued++
	ticket := sk.queued
	lc.rec = lnext
	unlock()
	if queued != nil {
		queued()
	}

	errRot := wait(ctx, pRot)
	err = wait(ctx, p)
	if err != nil || errRot != nil {
		l.recoverSend(ctx, k, sk, ticket)
	}
	if err != nil {
		return nil, fmt.Errorf("charge %v: %w", k, err)
	}
	return r, nil
}

// chargeLeak adds leak to the consumed leakage if every observer class has
// room. An observer class the send does not leak to is not checked, so a
// limit of 0 means "nothing may leak to this class", not "nothing may be sent".
func chargeLeak(cur leakRecord, leak, limits core.Leakage) (leakRecord, error) {
	for i, v := range leak {
		if v == 0 {
			continue
		}
		if cur.consumed[i] > limits[i] || v > limits[i]-cur.consumed[i] {
			return cur, fmt.Errorf("%v: leak %d, consumed %d of %d: %w", core.Observer(i), v, cur.consumed[i], limits[i], ErrLeakageExhausted)
		}
		cur.consumed[i] += v
	}
	return cur, nil
}

// extends reports whether a receipt with this nonce, built on memory state
// cur, follows the stored chain. A first receipt may also start over a stored
// chain of an earlier epoch, if that epoch has nothing left to summarise.
func extends(stored sendRecord, found bool, cur sendRecord, nonce uint64, audit bool) bool {
	if nonce > 1 {
		return found && stored.epoch == cur.epoch && stored.nonce == nonce-1 && stored.head == cur.head
	}
	switch {
	case !found:
		return true
	case stored.epoch == cur.epoch:
		return stored.nonce == 0
	case stored.epoch < cur.epoch:
		return stored.nonce == 0 || !audit
	}
	return false
}

// mergeLeak writes a context's leakage. Charges of different keys of one
// context commit in the order they were built (under the context's lock), so
// the later value includes the earlier; max keeps that true even after a
// failed commit, at the price of over-counting the failed charge (fail
// closed). An epoch that ended unsummarised must be rotated first.
func mergeLeak(bs *buckets, c core.ContextID, w leakRecord, audit bool) error {
	stored, found, err := bs.getLeak(c)
	if err != nil {
		return err
	}
	if found {
		switch {
		case stored.epoch > w.epoch:
			return fmt.Errorf("leakage of %s is in epoch %d, not %d: %w", c, stored.epoch, w.epoch, ErrStale)
		case stored.epoch == w.epoch:
			for i := range w.consumed {
				w.consumed[i] = max(w.consumed[i], stored.consumed[i])
			}
		case audit && stored.consumed != (core.Leakage{}):
			return fmt.Errorf("leakage of %s epoch %d was not summarised: %w", c, stored.epoch, ErrStale)
		}
	}
	return bs.leak.Put(c[:], w.encode())
}

func (l *Ledger) auditing() bool { return l.audit != (core.Namespace{}) }

// rotation builds the Txn that closes ended epochs with their summary facts:
// k's chain if old had receipts and ends before epoch e, and k's context's
// leakage if lold consumed something and ends before le. Nil when there is
// nothing to summarise (or audit is off: rotation then happens lazily). The
// chain closes every epoch; its budget period's spend carries on into e if
// the period goes on.
func (l *Ledger) rotation(k Key, old sendRecord, e core.Epoch, lold leakRecord, le core.Epoch) (*journal.Txn, error) {
	if !l.auditing() {
		return nil, nil
	}
	sendRot := old.epoch < e && old.nonce > 0
	leakRot := lold.epoch < le && lold.consumed != (core.Leakage{})
	if !sendRot && !leakRot {
		return nil, nil
	}
	var facts []*journal.SignedFact
	if sendRot {
		s := EpochSummary{Context: k.Context, Src: l.self, Dst: k.Peer, Epoch: old.epoch, Count: old.nonce, Total: old.cost, LastNonce: old.nonce, LastHash: old.head}
		sf, err := l.j.SignLocal(l.signer, journal.Draft{Namespace: l.audit, TypeID: TypeEpochSummary, Payload: s.Encode()})
		if err != nil {
			return nil, fmt.Errorf("epoch summary of %v: %w", k, err)
		}
		facts = append(facts, sf)
	}
	if leakRot {
		s := LeakageSummary{Context: k.Context, Epoch: lold.epoch, Consumed: lold.consumed}
		sf, err := l.j.SignLocal(l.signer, journal.Draft{Namespace: l.audit, TypeID: TypeLeakageSummary, Payload: s.Encode()})
		if err != nil {
			return nil, fmt.Errorf("leakage summary of %s: %w", k.Context, err)
		}
		facts = append(facts, sf)
	}
	op := func(tx *journal.ExtTx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		if sendRot {
			stored, found, err := bs.getSend(k)
			if err != nil {
				return err
			}
			if !found || stored != old {
				return fmt.Errorf("rotate %v: stored chain moved: %w", k, ErrStale)
			}
			if err := bs.send.Put(keyBytes(k), old.at(e, l.period).encode()); err != nil {
				return err
			}
		}
		if leakRot {
			stored, found, err := bs.getLeak(k.Context)
			if err != nil {
				return err
			}
			if found && stored.epoch >= le {
				return nil // another key's rotation got there first
			}
			return bs.leak.Put(k.Context[:], leakRecord{class: lold.class, epoch: le}.encode())
		}
		return nil
	}
	return &journal.Txn{Facts: facts, Ops: []journal.TxOp{op}}, nil
}

// Sweep closes every epoch that has ended with something to summarise, for
// keys that have gone quiet (a busy key rotates on its next charge). The
// daemon calls it once an epoch (EpochLength, not the budget period); without
// audit it does nothing.
func (l *Ledger) Sweep(ctx context.Context) error {
	if !l.auditing() {
		return nil
	}
	l.mu.RLock()
	keys := make([]Key, 0, len(l.send))
	for k := range l.send {
		keys = append(keys, k)
	}
	l.mu.RUnlock()
	sortKeys(keys)
	for _, k := range keys {
		if err := l.rotateKey(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

func (l *Ledger) rotateKey(ctx context.Context, k Key) error {
	sk := l.sendFor(k)
	sk.mu.Lock()
	lc := l.leakFor(k.Context)
	lc.mu.Lock()
	unlock := func() { lc.mu.Unlock(); sk.mu.Unlock() }
	if sk.stale {
		if err := l.reloadSendLocked(ctx, k, sk, lc); err != nil {
			unlock()
			return err
		}
	}
	if lc.stale {
		if err := l.reloadLeak(ctx, k.Context, lc); err != nil {
			unlock()
			return err
		}
	}
	e := l.epochs.Current()
	old, lold := sk.rec, lc.rec
	rot, err := l.rotation(k, old, max(e, old.epoch), lold, max(e, lold.epoch))
	if err != nil || rot == nil {
		unlock()
		return err
	}
	p, err := l.j.CommitAsync(ctx, *rot)
	if err != nil {
		unlock()
		return fmt.Errorf("rotate %v: %w", k, err)
	}
	if old.epoch < e && old.nonce > 0 {
		sk.rec = old.at(e, l.period)
	}
	if lold.epoch < e && lold.consumed != (core.Leakage{}) {
		lc.rec = leakRecord{class: lold.class, epoch: e}
	}
	sk.queued++
	ticket := sk.queued
	unlock()
	if err := wait(ctx, p); err != nil {
		l.recoverSend(ctx, k, sk, ticket)
		return fmt.Errorf("rotate %v: %w", k, err)
	}
	return nil
}

// barrier runs read in the writer, after every commit queued before it, and
// waits for it: the way to learn what the store holds once the queue ahead
// has settled.
func (l *Ledger) barrier(ctx context.Context, read func(bs *buckets) error) error {
	p, err := l.j.CommitAsync(context.WithoutCancel(ctx), journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		return read(bs)
	}}})
	if err != nil {
		return err
	}
	return wait(ctx, p)
}

// recoverSend reloads k (and its context's leakage) after a failed commit
// with the given ticket, unless a reload since has covered it.
func (l *Ledger) recoverSend(ctx context.Context, k Key, sk *sendState, ticket uint64) {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.synced >= ticket {
		return
	}
	lc := l.leakFor(k.Context)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if err := l.reloadSendLocked(ctx, k, sk, lc); err != nil {
		l.log.Warn("budget: reload after a failed commit", zapKey(k), zapErr(err))
	}
}

// reloadSend reloads k and its context's leakage; sk's lock is held.
func (l *Ledger) reloadSend(ctx context.Context, k Key, sk *sendState) error {
	lc := l.leakFor(k.Context)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return l.reloadSendLocked(ctx, k, sk, lc)
}

// reloadSendLocked: both locks are held. On failure both stay marked stale.
func (l *Ledger) reloadSendLocked(ctx context.Context, k Key, sk *sendState, lc *leakState) error {
	sk.stale, lc.stale = true, true
	var rec sendRecord
	var lrec leakRecord
	err := l.barrier(ctx, func(bs *buckets) error {
		var err error
		if rec, _, err = bs.getSend(k); err != nil {
			return err
		}
		lrec, _, err = bs.getLeak(k.Context)
		return err
	})
	if err != nil {
		return fmt.Errorf("reload %v: %w", k, err)
	}
	sk.rec, sk.stale, sk.synced = rec, false, sk.queued
	lc.rec, lc.stale = lrec, false
	return nil
}

// reloadLeak reloads a context's leakage; its lock is held.
func (l *Ledger) reloadLeak(ctx context.Context, c core.ContextID, lc *leakState) error {
	lc.stale = true
	var lrec leakRecord
	err := l.barrier(ctx, func(bs *buckets) error {
		var err error
		lrec, _, err = bs.getLeak(c)
		return err
	})
	if err != nil {
		return fmt.Errorf("reload leakage of %s: %w", c, err)
	}
	lc.rec, lc.stale = lrec, false
	return nil
}
