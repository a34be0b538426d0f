package sync

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	stdsync "sync"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// pushJob is facts to send to the peer: listed ids, the whole namespace, or
// a range of it minus the ids the peer has.
type pushJob struct {
	ids []core.FactID
	// wants are facts the peer asked for by id prefix; the batch says how
	// many are not here.
	wants []idPrefix

	all     bool
	bounded bool
	lo, hi  journal.FactKey
	exclude map[core.FactID]struct{}
	count   uint64
}

// startPush sends a job's facts on a goroutine of its own, so the session
// keeps reading the peer's messages (and the peer keeps reading ours) while
// a large transfer runs both ways.
func (ss *session) startPush(ctx context.Context, j pushJob) {
	ss.pushing++
	ss.p.Phase = PhaseTransferring
	go func() { ss.pushed <- ss.push(ctx, j) }()
}

// pushInFlight is how many batches of one push may be charged and not yet
// sent at once. Each batch waits for its charge to be durable before it
// leaves; in flight together, their charges share the ledger's group
// commits instead of paying a commit each in a row (the receiver keeps
// maxInFlight batches verifying the same way).
const pushInFlight = 4

// batcher fills batch messages up to the wire limit and sends them, up to
// pushInFlight at once, in the order it fills them.
type batcher struct {
	ss    *session
	facts [][]byte
	size  int

	slots chan struct{} // one per batch in flight
	wg    stdsync.WaitGroup
	mu    stdsync.Mutex
	err   error // the first send's failure
}

func newBatcher(ss *session) *batcher {
	return &batcher{ss: ss, slots: make(chan struct{}, pushInFlight)}
}

func (b *batcher) add(ctx context.Context, raw []byte) error {
	need := len(raw) + binary.MaxVarintLen32
	if len(b.facts) > 0 && b.size+need > maxMessage-batchOverhead {
		if err := b.flush(ctx, 0); err != nil {
			return err
		}
	}
	b.facts = append(b.facts, raw)
	b.size += need
	return nil
}

// flush starts sending the filled batch and returns once it has its place
// in the chain (so the next batch goes after it) or its send ended; it
// returns the first failure of any batch sent so far.
func (b *batcher) flush(ctx context.Context, missing uint64) error {
	if err := b.failed(); err != nil {
		return err
	}
	if len(b.facts) == 0 && missing == 0 {
		return nil
	}
	p := encodeBatch(b.ss.id, missing, b.facts)
	n := len(b.facts)
	b.facts, b.size = b.facts[:0], 0 // p holds copies of them
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	queued := make(chan struct{})
	closeQueued := stdsync.OnceFunc(func() { close(queued) })
	b.wg.Go(func() {
		defer func() { <-b.slots }()
		err := b.ss.sendFacts(ctx, p, n, closeQueued)
		closeQueued()
		if err != nil {
			b.mu.Lock()
			if b.err == nil {
				b.err = err
			}
			b.mu.Unlock()
		}
	})
	<-queued
	return b.failed()
}

func (b *batcher) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// finish flushes the last batch and waits for every send of the push.
func (b *batcher) finish(ctx context.Context, missing uint64) error {
	err := b.flush(ctx, missing)
	b.wg.Wait()
	if err != nil {
		return err
	}
	return b.failed()
}

// sendFacts sends one batch; queued hears when it has its place in the
// chain. It runs on push goroutines, so what it counts goes under pushMu,
// where report folds it into the session's progress.
func (ss *session) sendFacts(ctx context.Context, p []byte, n int, queued func()) error {
	m := transportMessage(ss, TypeBatch, p)
	m.Queued = queued
	if err := ss.s.net.Send(ctx, m); err != nil {
		return sendFailed(ctx, err)
	}
	ss.pushMu.Lock()
	ss.pushBytes += uint64(len(p))
	ss.pushFacts += uint64(n)
	ss.pushMu.Unlock()
	return nil
}

func (ss *session) push(ctx context.Context, j pushJob) error {
	b := newBatcher(ss)
	// Every path ends in finish, so no send of this push outlives it.
	defer b.wg.Wait()
	ns := ss.ns()
	switch {
	case j.wants != nil:
		var missing uint64
		for _, p := range j.wants {
			ids, err := ss.s.st.FactIDsWithPrefix(ctx, hex.EncodeToString(p[:]), 4)
			if err != nil {
				return localErr(err)
			}
			found := false
			for _, id := range ids {
				f, err := ss.s.st.Get(ctx, id)
				if errors.Is(err, core.ErrNotFound) || (err == nil && f.Namespace != ns) {
					// Never a fact of another namespace, whoever asks.
					continue
				}
				if err != nil {
					return localErr(err)
				}
				found = true
				if err := b.add(ctx, f.Encode()); err != nil {
					return err
				}
			}
			if !found {
				missing++
			}
		}
		return b.finish(ctx, missing)
	case j.ids != nil:
		for _, id := range j.ids {
			f, err := ss.s.st.Get(ctx, id)
			if errors.Is(err, core.ErrNotFound) || (err == nil && f.Namespace != ns) {
				continue
			}
			if err != nil {
				return localErr(err)
			}
			if err := b.add(ctx, f.Encode()); err != nil {
				return err
			}
		}
		return b.finish(ctx, 0)
	default:
		lo, hi := journal.FactKey{}, journal.FactKey{}
		if j.bounded {
			lo, hi = j.lo, j.hi
		}
		return ss.walk(ctx, b, lo, hi, j.exclude)
	}
}

// walk sends the facts of [lo, hi) not in exclude, in (lamport, id) order
// (a namespace's genesis first), reading a chunk at a time so that no read
// transaction stays open while the network is slow.
func (ss *session) walk(ctx context.Context, b *batcher, lo, hi journal.FactKey, exclude map[core.FactID]struct{}) error {
	for {
		var chunk [][]byte
		var last journal.FactKey
		err := ss.s.st.Range(ctx, ss.ns(), lo, hi, func(f journal.StoredFact) bool {
			last = f.Key()
			if _, skip := exclude[f.ID]; !skip {
				chunk = append(chunk, f.Encode())
			}
			return len(chunk) < pushChunkFacts
		})
		if err != nil {
			return localErr(fmt.Errorf("reading facts to send: %w", err))
		}
		for _, raw := range chunk {
			if err := b.add(ctx, raw); err != nil {
				return err
			}
		}
		if len(chunk) < pushChunkFacts {
			return b.finish(ctx, 0)
		}
		lo = successor(last)
	}
}
