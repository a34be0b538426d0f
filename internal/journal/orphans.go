package journal

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
)

// ErrOrphanTooLarge: a received orphan alone exceeds a sender's share of the
// orphan pool, so it was not kept.
var ErrOrphanTooLarge = fmt.Errorf("orphan larger than a sender's share of the orphan pool: %w", core.ErrResourceExhausted)

// OrphanLimits bound the orphan pool. Zero fields take the defaults.
type OrphanLimits struct {
	// Per sender: a flood from one peer only ever evicts its own orphans.
	MaxPerSender      int   // default 256
	MaxPerSenderBytes int64 // default 4 MiB
	// In total: on overflow the sender holding the most bytes loses its oldest.
	MaxTotal      int   // default 4096
	MaxTotalBytes int64 // default 32 MiB
}

func (l OrphanLimits) withDefaults() OrphanLimits {
	if l.MaxPerSender <= 0 {
		l.MaxPerSender = 256
	}
	if l.MaxPerSenderBytes <= 0 {
		l.MaxPerSenderBytes = 4 << 20
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = 4096
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = 32 << 20
	}
	return l
}

// Received says what became of a fact from a peer.
type Received struct {
	Committed
	// Orphaned: the fact's namespace, or its author's membership, is not known
	// here yet. The fact waits in the orphan pool and is inserted (and
	// published to watchers) once a commit brings what it lacks, unless the
	// pool evicts it first.
	Orphaned bool
}

// Receive verifies a fact a peer sent and durably inserts it, as Append does;
// but a fact whose namespace is unknown or whose author is not (yet) a member
// is parked in the orphan pool, attributed to from, instead of refused.
//
// The pool is in memory: it is lost on Close, and peers send such facts again
// on the next sync.
func (j *Journal) Receive(ctx context.Context, from core.DeviceID, sf *SignedFact) (Received, error) {
	if err := sf.VerifySignature(); err != nil {
		return Received{}, err
	}
	if err := j.validate(sf); err != nil {
		return Received{}, err
	}
	cs, err := j.submit(ctx, &request{facts: []*SignedFact{sf}, receive: true, from: from})
	var eo errOrphan
	if errors.As(err, &eo) {
		return Received{Committed: Committed{ID: sf.ID, Namespace: sf.Namespace, Lamport: sf.Lamport}, Orphaned: true}, nil
	}
	if err != nil {
		return Received{}, err
	}
	return Received{Committed: cs[0]}, nil
}

// OrphanStats reports the facts the orphan pool holds, their bytes, and how
// many it has evicted since Open.
func (j *Journal) OrphanStats() (count, bytes, evicted uint64) {
	return j.orphans.stats()
}

// errOrphan marks a received fact that lacks its namespace or its author's
// membership.
type errOrphan struct{ err error }

func (e errOrphan) Error() string { return e.err.Error() }
func (e errOrphan) Unwrap() error { return e.err }

// poolOrphans parks the orphans of a committed batch. Writer only.
func (j *Journal) poolOrphans(batch []*request, results []*result) {
	for i, r := range batch {
		var eo errOrphan
		if r.retry || !errors.As(results[i].err, &eo) {
			continue
		}
		if !j.orphans.add(r.from, r.facts[0]) {
			results[i].err = fmt.Errorf("%w (%v)", ErrOrphanTooLarge, eo.err)
		}
	}
}

// retryOrphans inserts the orphans of namespaces that a commit founded or gave
// new members, and again for what those inserts change, until nothing
// changes. Each round needs a commit of a fact the pool held, so it ends.
// Writer only.
func (j *Journal) retryOrphans(changed map[core.Namespace]bool) {
	for len(changed) > 0 {
		waiting := j.orphans.waitingIn(changed)
		if len(waiting) == 0 {
			return
		}
		next := map[core.Namespace]bool{}
		for len(waiting) > 0 {
			n := min(len(waiting), j.maxBatch)
			batch := make([]*request, n)
			for i, o := range waiting[:n] {
				batch[i] = &request{facts: []*SignedFact{o.sf}, receive: true, from: o.from, retry: true}
			}
			waiting = waiting[n:]
			results, ch := j.commitBatch(batch)
			for ns := range ch {
				next[ns] = true
			}
			for i, r := range batch {
				res := results[i]
				var eo errOrphan
				switch {
				case errors.As(res.err, &eo):
					// Still lacking something: it keeps its place.
				case errors.Is(res.err, core.ErrUnavailable) || errors.Is(res.err, core.ErrDataLoss):
					// The store failed, not the fact: keep it for later.
					return
				default:
					if res.err != nil {
						j.log.Debug("orphan refused on retry", zap.Stringer("fact", r.facts[0].ID), zap.Error(res.err))
					}
					j.orphans.remove(r.facts[0].ID)
				}
			}
		}
		changed = next
	}
}

type orphan struct {
	sf   *SignedFact
	from core.DeviceID
	size int64
	seq  uint64        // arrival order in the pool
	elem *list.Element // in its sender's queue
}

type senderQueue struct {
	q     list.List // *orphan, oldest first
	bytes int64
}

// orphanPool holds received facts that wait for a namespace or a membership.
// Only the writer changes it; the mutex is for OrphanStats.
type orphanPool struct {
	lim OrphanLimits

	mu       sync.Mutex
	byID     map[core.FactID]*orphan
	bySender map[core.DeviceID]*senderQueue
	byNS     map[core.Namespace]map[core.FactID]*orphan
	bytes    int64
	evicted  uint64
	arrivals uint64
}

func newOrphanPool(lim OrphanLimits) *orphanPool {
	return &orphanPool{
		lim:      lim.withDefaults(),
		byID:     map[core.FactID]*orphan{},
		bySender: map[core.DeviceID]*senderQueue{},
		byNS:     map[core.Namespace]map[core.FactID]*orphan{},
	}
}

func (p *orphanPool) stats() (count, bytes, evicted uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return uint64(len(p.byID)), uint64(p.bytes), p.evicted
}

// add parks sf and enforces the bounds: first the sender's own, evicting its
// oldest; then the total, evicting the oldest of whichever sender holds the
// most bytes, so a flooding peer pays for its flood. It reports whether sf is
// held afterwards.
func (p *orphanPool) add(from core.DeviceID, sf *SignedFact) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.byID[sf.ID]; ok {
		return true
	}
	size := int64(len(sf.Body) + len(sf.Signature))
	if size > p.lim.MaxPerSenderBytes {
		p.evicted++
		return false
	}
	sq := p.bySender[from]
	if sq == nil {
		sq = &senderQueue{}
		p.bySender[from] = sq
	}
	p.arrivals++
	o := &orphan{sf: sf, from: from, size: size, seq: p.arrivals}
	o.elem = sq.q.PushBack(o)
	sq.bytes += size
	p.byID[sf.ID] = o
	ns := p.byNS[sf.Namespace]
	if ns == nil {
		ns = map[core.FactID]*orphan{}
		p.byNS[sf.Namespace] = ns
	}
	ns[sf.ID] = o
	p.bytes += size

	for sq.q.Len() > p.lim.MaxPerSender || sq.bytes > p.lim.MaxPerSenderBytes {
		p.evictOldest(sq)
	}
	for len(p.byID) > p.lim.MaxTotal || p.bytes > p.lim.MaxTotalBytes {
		p.evictOldest(p.largestSender())
	}
	_, held := p.byID[sf.ID]
	return held
}

// largestSender is the sender holding the most bytes; among equals, the one
// holding the oldest orphan (arrivals are unique, so eviction does not depend
// on map order).
func (p *orphanPool) largestSender() *senderQueue {
	var best *senderQueue
	for _, sq := range p.bySender {
		if best == nil || sq.bytes > best.bytes ||
			sq.bytes == best.bytes && sq.oldest() < best.oldest() {
			best = sq
		}
	}
	return best
}

func (sq *senderQueue) oldest() uint64 { return sq.q.Front().Value.(*orphan).seq }

func (p *orphanPool) evictOldest(sq *senderQueue) {
	o := sq.q.Front().Value.(*orphan)
	p.removeLocked(o)
	p.evicted++
}

func (p *orphanPool) remove(id core.FactID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o, ok := p.byID[id]; ok {
		p.removeLocked(o)
	}
}

func (p *orphanPool) removeLocked(o *orphan) {
	sq := p.bySender[o.from]
	sq.q.Remove(o.elem)
	sq.bytes -= o.size
	if sq.q.Len() == 0 {
		delete(p.bySender, o.from)
	}
	delete(p.byID, o.sf.ID)
	ns := p.byNS[o.sf.Namespace]
	delete(ns, o.sf.ID)
	if len(ns) == 0 {
		delete(p.byNS, o.sf.Namespace)
	}
	p.bytes -= o.size
}

// waitingIn returns the orphans of the given namespaces in (lamport, id)
// order, so a fact is usually retried after the facts that admit its author.
func (p *orphanPool) waitingIn(nss map[core.Namespace]bool) []*orphan {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*orphan
	for ns := range nss {
		for _, o := range p.byNS[ns] {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *orphan) int {
		ka, kb := a.sf.Key(), b.sf.Key()
		switch {
		case ka.Less(kb):
			return -1
		case kb.Less(ka):
			return 1
		}
		return 0
	})
	return out
}
