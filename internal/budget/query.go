package budget

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// List returns every known (context, peer), sorted by context then peer.
func (l *Ledger) List(ctx context.Context) ([]Entry, error) {
	l.mu.RLock()
	seen := map[Key]bool{}
	for k := range l.send {
		seen[k] = true
	}
	for k := range l.recv {
		seen[k] = true
	}
	for k := range l.limits {
		seen[k] = true
	}
	l.mu.RUnlock()
	keys := make([]Key, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sortKeys(keys)
	out := make([]Entry, 0, len(keys))
	for _, k := range keys {
		if en, ok := l.entry(k); ok {
			out = append(out, en)
		}
	}
	return out, nil
}

// Get returns one (context, peer); core.ErrNotFound if the ledger has never
// seen it.
func (l *Ledger) Get(ctx context.Context, k Key) (Entry, error) {
	en, ok := l.entry(k)
	if !ok {
		return Entry{}, fmt.Errorf("budget %v: %w", k, core.ErrNotFound)
	}
	return en, nil
}

// entry reads k as of the current epoch: a chain of an earlier epoch shows
// as no receipt, and a spend of an earlier budget period as nothing spent,
// which is what the next charge will see.
func (l *Ledger) entry(k Key) (Entry, bool) {
	l.mu.RLock()
	sk, rk := l.send[k], l.recv[k]
	override, hasOverride := l.limits[k]
	l.mu.RUnlock()
	// A key whose every charge and receipt was refused exists in memory
	// (its lock) but not in the ledger: a refusal leaves no trace.
	if sk != nil {
		sk.mu.Lock()
		empty := sk.rec.class == 0
		sk.mu.Unlock()
		if empty {
			sk = nil
		}
	}
	if rk != nil {
		rk.mu.Lock()
		empty := rk.class == 0
		rk.mu.Unlock()
		if empty {
			rk = nil
		}
	}
	if sk == nil && rk == nil && !hasOverride {
		return Entry{}, false
	}
	e := l.epochs.Current()
	en := Entry{Key: k, Epoch: e, Period: l.period, Override: override, HasOverride: hasOverride}
	if sk != nil {
		sk.mu.Lock()
		rec := sk.rec.at(e, l.period)
		sk.mu.Unlock()
		en.Class = rec.class
		en.State.Spent, en.LastNonce = rec.spent, rec.nonce
	}
	if rk != nil {
		rk.mu.Lock()
		if en.Class == 0 {
			en.Class = rk.class
		}
		en.Received = periodReceived(rk.chains, e, l.period)
		rk.mu.Unlock()
	}
	en.State.Epoch = periodStart(e, l.period)
	en.State.Limit = l.limit(k, en.Class)
	en.ReceivedLimit = en.State.Limit
	return en, true
}

// SetLimit sets the operator's limit for k, persisted. It is one more term of
// the meet: the effective limit is min(policy limit, operator limit), for
// what this device sends the peer and for what it accepts from it. The
// operator's term replaces their earlier one for k, so they can lower a
// limit and later raise it again, but never above the policy's (class
// default ⊓ configured overrides): to go higher, raise the default in the
// config. SetLimit(k, math.MaxUint64) therefore removes the operator's term
// in effect. A limit of 0 stops all traffic of k.
func (l *Ledger) SetLimit(ctx context.Context, k Key, limit uint64) error {
	l.limitMu.Lock()
	defer l.limitMu.Unlock()
	_, err := l.j.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		return bs.limits.Put(keyBytes(k), encodeLimit(limit))
	}}})
	if err != nil {
		return fmt.Errorf("set limit of %v: %w", k, err)
	}
	l.mu.Lock()
	l.limits[k] = limit
	l.mu.Unlock()
	return nil
}

// Receipts returns up to limit (100 if limit <= 0) of k's retained
// receipts, both those sent to the peer and those received from it, most
// recent first: by epoch, then nonce, sent before received on a tie.
func (l *Ledger) Receipts(ctx context.Context, k Key, limit int) ([]Receipt, error) {
	if limit <= 0 {
		limit = 100
	}
	type item struct {
		r   *Receipt
		dir byte
	}
	var items []item
	// Accepted receipts reach the store a commit after Accept returns; the
	// barrier reads behind them, so the audit list holds all accepted so far.
	err := l.barrier(ctx, func(bs *buckets) error {
		if bs.receipts == nil {
			return nil
		}
		prefix := keyBytes(k)
		c := bs.receipts.Cursor()
		for key, v := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, v = c.Next() {
			r, err := DecodeReceipt(v)
			if err != nil {
				return fmt.Errorf("stored receipt: %w: %w", err, ErrCorrupt)
			}
			items = append(items, item{r, key[keyLen]})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(b.r.Epoch, a.r.Epoch), cmp.Compare(b.r.Nonce, a.r.Nonce), cmp.Compare(a.dir, b.dir))
	})
	out := make([]Receipt, 0, min(limit, len(items)))
	for _, it := range items[:min(limit, len(items))] {
		out = append(out, *it.r)
	}
	return out, nil
}

// Checkpoints returns the latest checkpoint k's peer signed of its chain to
// this device in each epoch still kept, newest first.
func (l *Ledger) Checkpoints(ctx context.Context, k Key) ([]*Checkpoint, error) {
	var out []*Checkpoint
	err := l.barrier(ctx, func(bs *buckets) error {
		if bs.checkpoints == nil {
			return nil
		}
		prefix := keyBytes(k)
		c := bs.checkpoints.Cursor()
		for key, v := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, v = c.Next() {
			cp, err := DecodeCheckpoint(v)
			if err != nil {
				return fmt.Errorf("stored checkpoint: %w: %w", err, ErrCorrupt)
			}
			out = append(out, cp)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(out) // keys sort by epoch
	return out, nil
}

// Leakage returns a context's leakage in the current epoch; core.ErrNotFound
// if nothing was ever sent in it.
func (l *Ledger) Leakage(ctx context.Context, c core.ContextID) (LeakageEntry, error) {
	l.mu.RLock()
	lc := l.leak[c]
	l.mu.RUnlock()
	if lc == nil {
		return LeakageEntry{}, fmt.Errorf("leakage of %s: %w", c, core.ErrNotFound)
	}
	lc.mu.Lock()
	rec := lc.rec
	lc.mu.Unlock()
	e := l.epochs.Current()
	en := LeakageEntry{Context: c, Class: rec.class, Epoch: e, Limits: l.policy.LeakageLimit(c, rec.class)}
	if rec.epoch >= e {
		en.Consumed = rec.consumed
	}
	return en, nil
}

func sortKeys(keys []Key) {
	slices.SortFunc(keys, func(a, b Key) int {
		return cmp.Or(bytes.Compare(a.Context[:], b.Context[:]), bytes.Compare(a.Peer[:], b.Peer[:]))
	})
}

func zapKey(k Key) zap.Field     { return zap.Stringer("budget", k) }
func zapErr(err error) zap.Field { return zap.Error(err) }
