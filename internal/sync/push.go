package sync

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

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

// batcher fills batch messages up to the wire limit.
type batcher struct {
	ss    *session
	facts [][]byte
	size  int
	sent  uint64
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

func (b *batcher) flush(ctx context.Context, missing uint64) error {
	if len(b.facts) == 0 && missing == 0 {
		return nil
	}
	p := encodeBatch(b.ss.id, missing, b.facts)
	if err := b.ss.sendFacts(ctx, p, len(b.facts)); err != nil {
		return err
	}
	b.sent += uint64(len(b.facts))
	b.facts, b.size = b.facts[:0], 0
	return nil
}

// sendFacts sends one batch. It runs on push goroutines, so what it counts
// goes under pushMu, where report folds it into the session's progress.
func (ss *session) sendFacts(ctx context.Context, p []byte, n int) error {
	if err := ss.s.net.Send(ctx, transportMessage(ss, TypeBatch, p)); err != nil {
		return sendFailed(ctx, err)
	}
	ss.pushMu.Lock()
	ss.pushBytes += uint64(len(p))
	ss.pushFacts += uint64(n)
	ss.pushMu.Unlock()
	return nil
}

func (ss *session) push(ctx context.Context, j pushJob) error {
	b := &batcher{ss: ss}
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
		return b.flush(ctx, missing)
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
		return b.flush(ctx, 0)
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
			return b.flush(ctx, 0)
		}
		lo = successor(last)
	}
}
