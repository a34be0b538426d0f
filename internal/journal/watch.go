package journal

import (
	"context"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// StoredFact is a fact with its place in this device's commit order.
type StoredFact struct {
	*SignedFact
	Seq uint64
}

// ErrWatchLagging: the watcher fell too far behind the writer; it may resume
// from the seq of the last fact it saw.
var ErrWatchLagging = fmt.Errorf("watch fell behind; resume from the last seq received: %w", core.ErrAborted)

// watchBacklog is how many matching facts a watcher may fall behind the writer
// before it is cut off with ErrWatchLagging. The backlog is a slice that grows
// only as facts wait in it, so an idle watch costs a few words, not a
// preallocated buffer: thousands of quiet watchers must stay cheap.
const watchBacklog = 4096

// hub fans committed facts out to watchers, in commit order.
type hub struct {
	mu      sync.Mutex
	lastSeq uint64
	subs    map[*Subscription]struct{}
	closed  bool
}

func newHub(lastSeq uint64) *hub {
	return &hub{lastSeq: lastSeq, subs: map[*Subscription]struct{}{}}
}

func (h *hub) publish(facts []StoredFact) {
	if len(facts) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastSeq = facts[len(facts)-1].Seq
	for s := range h.subs {
		s.deliver(facts)
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.end(false)
	}
}

// WatchOptions select facts to watch.
type WatchOptions struct {
	// Namespace, if set, limits the watch to one namespace.
	Namespace *core.Namespace
	// TypeID, if set, limits the watch to one type.
	TypeID string
	// AfterSeq resumes after this seq: only facts with a greater seq are
	// delivered; 0 replays from the start. A seq beyond the last committed one
	// is refused rather than waited for: no cursor this journal handed out can
	// be ahead of it, so the caller holds a cursor of another journal, or of
	// this one before it was restored from an older backup, and waiting would
	// silently skip the facts it lacks.
	AfterSeq uint64
	// FromNow skips the replay; AfterSeq is then ignored.
	FromNow bool
}

// Subscription delivers facts in commit order: first the stored ones after the
// cursor, then each new commit.
type Subscription struct {
	j    *Journal
	opts WatchOptions
	wake chan struct{} // capacity 1: "pending or ended changed"

	// Guarded by j.hub.mu.
	pending []StoredFact // matching facts committed since the watch began
	ended   bool         // removed from the hub: closed, or lagging
	lagging bool

	// Owned by the reader (Next).
	replay []StoredFact
	cursor uint64 // last stored seq replayed (or skipped)
	endSeq uint64 // the replay covers seqs up to and including this
}

// Watch subscribes to facts matching opts.
func (j *Journal) Watch(ctx context.Context, opts WatchOptions) (*Subscription, error) {
	s := &Subscription{j: j, opts: opts, wake: make(chan struct{}, 1)}
	h := j.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if !opts.FromNow && opts.AfterSeq > h.lastSeq {
		return nil, fmt.Errorf("after_seq %d is beyond the last seq %d: %w", opts.AfterSeq, h.lastSeq, core.ErrInvalidArgument)
	}
	s.endSeq = h.lastSeq
	s.cursor = opts.AfterSeq
	if opts.FromNow {
		s.cursor = s.endSeq
	}
	h.subs[s] = struct{}{}
	return s, nil
}

// Close ends the subscription.
func (s *Subscription) Close() {
	h := s.j.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	s.end(false)
	s.pending = nil
}

// deliver queues the facts of one commit that s wants; h.mu is held.
func (s *Subscription) deliver(facts []StoredFact) {
	n := 0
	for _, f := range facts {
		if f.Seq > s.endSeq && s.matches(f) {
			n++
		}
	}
	if n == 0 {
		return
	}
	if len(s.pending)+n > watchBacklog {
		// What is already queued is still delivered, then ErrWatchLagging:
		// the reader resumes exactly after the last fact it got.
		s.end(true)
		return
	}
	for _, f := range facts {
		if f.Seq > s.endSeq && s.matches(f) {
			s.pending = append(s.pending, f)
		}
	}
	s.signal()
}

// end removes s from the hub; h.mu is held.
func (s *Subscription) end(lagging bool) {
	if s.ended {
		return
	}
	delete(s.j.hub.subs, s)
	s.ended, s.lagging = true, lagging
	s.signal()
}

func (s *Subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Subscription) matches(f StoredFact) bool {
	if s.opts.Namespace != nil && f.Namespace != *s.opts.Namespace {
		return false
	}
	return s.opts.TypeID == "" || f.TypeID == s.opts.TypeID
}

// Next blocks for the next matching fact.
func (s *Subscription) Next(ctx context.Context) (StoredFact, error) {
	h := s.j.hub
	for {
		for len(s.replay) > 0 {
			f := s.replay[0]
			s.replay = s.replay[1:]
			if s.matches(f) {
				return f, nil
			}
		}
		if s.cursor < s.endSeq {
			if err := s.fill(); err != nil {
				return StoredFact{}, err
			}
			continue
		}
		h.mu.Lock()
		// Taking the whole backlog lets the writer start a fresh, small one.
		s.replay, s.pending = s.pending, nil
		ended, lagging := s.ended, s.lagging
		h.mu.Unlock()
		switch {
		case len(s.replay) > 0:
			continue
		case lagging:
			return StoredFact{}, ErrWatchLagging
		case ended:
			return StoredFact{}, ErrClosed
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return StoredFact{}, ctx.Err()
		}
	}
}

// fill reads the next page of the replay from the log.
func (s *Subscription) fill() error {
	const page = 256
	return s.j.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		// cursor < endSeq here, so cursor+1 does not wrap.
		for k, v := c.Seek(u64(s.cursor + 1)); k != nil && len(s.replay) < page; k, v = c.Next() {
			seq := getU64(k)
			if seq > s.endSeq {
				break
			}
			loc, err := decodeLogEntry(seq, v)
			if err != nil {
				return err
			}
			sf, err := readFact(tx, loc)
			if err != nil {
				return err
			}
			s.replay = append(s.replay, StoredFact{SignedFact: sf, Seq: seq})
			s.cursor = seq
		}
		if len(s.replay) == 0 {
			s.cursor = s.endSeq
		}
		return nil
	})
}

// readFact loads and decodes a fact, copying it out of bbolt's mmap.
func readFact(tx *bolt.Tx, loc location) (*SignedFact, error) {
	b := tx.Bucket(bucketFacts).Bucket(nsKey(loc.ns))
	if b == nil {
		return nil, fmt.Errorf("namespace bucket %s missing: %w", loc.ns, ErrCorrupt)
	}
	fk := factKey(loc.key)
	raw := b.Get(fk)
	if raw == nil {
		return nil, fmt.Errorf("fact %s missing: %w", loc.key.ID, ErrCorrupt)
	}
	return decodeStored(loc.key, raw, sumIn(sumsOf(tx, nsKey(loc.ns)), fk))
}
