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
	rs, err := j.ReceiveBatch(ctx, from, []*SignedFact{sf})
	if err != nil {
		return Received{}, err
	}
	return rs[0].Received, rs[0].Err
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

// errOrphanPartial: inserting a waiting orphan failed after it wrote into the
// transaction, which must be thrown away and the batch retried without it.
type errOrphanPartial struct {
	id  core.FactID
	err error
}

func (e errOrphanPartial) Error() string { return fmt.Sprintf("orphan %s: %v", e.id, e.err) }
func (e errOrphanPartial) Unwrap() error { return e.err }

// admission inserts, inside a write transaction, the orphans that the
// transaction's facts admit, right after the fact that admits them: the
// pool's, and those of earlier requests of the same batch, which the pool
// only takes after the commit but which one-by-one commits would already have
// parked there. Writer only.
type admission struct {
	j       *Journal
	st      *txState
	dropped map[core.FactID]bool
	// waiting holds the batch's orphans so far, by namespace.
	waiting map[core.Namespace][]*orphan
	// settled holds the orphans inserted (or refused) here: after the
	// commit they leave the pool, or never enter it.
	settled map[core.FactID]bool
}

func (j *Journal) newAdmission(st *txState, dropped map[core.FactID]bool) *admission {
	return &admission{j: j, st: st, dropped: dropped, waiting: map[core.Namespace][]*orphan{}, settled: map[core.FactID]bool{}}
}

// note records r's fact as waiting if res made it an orphan the pool will
// keep.
func (a *admission) note(r *request, res *result) {
	var eo errOrphan
	if !errors.As(res.err, &eo) {
		return
	}
	sf := r.facts[0]
	if a.j.orphans.fits(sf) {
		a.waiting[sf.Namespace] = append(a.waiting[sf.Namespace], &orphan{sf: sf, from: r.from})
	}
}

// admit inserts the waiting orphans of the namespaces founded or given new
// members since its last call, in (lamport, id) order, and again for what
// those inserts change, until nothing changes; each round needs an insert,
// so it ends.
func (a *admission) admit() error {
	for len(a.st.changed) > 0 {
		changed := a.st.changed
		a.st.changed = map[core.Namespace]bool{}
		for _, o := range a.candidates(changed) {
			_, wrote, err := a.st.insert(o.sf, true)
			var eo errOrphan
			switch {
			case errors.As(err, &eo):
				// Still lacking something: it keeps waiting.
			case err != nil && wrote:
				return errOrphanPartial{id: o.sf.ID, err: err}
			case errors.Is(err, core.ErrUnavailable) || errors.Is(err, core.ErrDataLoss):
				// The store failed, not the fact: it keeps waiting.
			default:
				if err != nil {
					a.j.log.Debug("orphan refused on retry", zap.Stringer("fact", o.sf.ID), zap.Error(err))
				}
				a.settled[o.sf.ID] = true
			}
		}
	}
	return nil
}

// candidates are the unsettled orphans waiting in the namespaces of changed,
// each once, in (lamport, id) order so that a fact usually comes after the
// facts that admit its author.
func (a *admission) candidates(changed map[core.Namespace]bool) []*orphan {
	var out []*orphan
	seen := map[core.FactID]bool{}
	add := func(o *orphan) {
		id := o.sf.ID
		if !seen[id] && !a.settled[id] && !a.dropped[id] {
			seen[id] = true
			out = append(out, o)
		}
	}
	for _, o := range a.j.orphans.waitingIn(changed) {
		add(o)
	}
	for ns := range changed {
		for _, o := range a.waiting[ns] {
			add(o)
		}
	}
	slices.SortFunc(out, func(x, y *orphan) int {
		kx, ky := x.sf.Key(), y.sf.Key()
		switch {
		case kx.Less(ky):
			return -1
		case ky.Less(kx):
			return 1
		}
		return 0
	})
	return out
}

// settleOrphans brings the pool up to date after a commit: the orphans the
// commit inserted, refused or dropped leave it, the batch's other orphans
// join it. Writer only.
func (j *Journal) settleOrphans(batch []*request, results []*result, settled, dropped map[core.FactID]bool) {
	for id := range settled {
		j.orphans.remove(id)
	}
	for id := range dropped {
		j.orphans.remove(id)
	}
	for i, r := range batch {
		var eo errOrphan
		if !errors.As(results[i].err, &eo) {
			continue
		}
		sf := r.facts[0]
		if settled[sf.ID] || dropped[sf.ID] {
			continue
		}
		if !j.orphans.add(r.from, sf) {
			results[i].err = fmt.Errorf("%w (%v)", ErrOrphanTooLarge, eo.err)
		}
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
	if !p.fits(sf) {
		p.evicted++
		return false
	}
	size := orphanSize(sf)
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

// fits reports whether sf alone is within a sender's share of the pool.
func (p *orphanPool) fits(sf *SignedFact) bool { return orphanSize(sf) <= p.lim.MaxPerSenderBytes }

func orphanSize(sf *SignedFact) int64 { return int64(len(sf.Body) + len(sf.Signature)) }

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

// waitingIn returns the orphans of the given namespaces, in no order.
func (p *orphanPool) waitingIn(nss map[core.Namespace]bool) []*orphan {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*orphan
	for ns := range nss {
		for _, o := range p.byNS[ns] {
			out = append(out, o)
		}
	}
	return out
}
