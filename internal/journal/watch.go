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

const watchBuffer = 4096

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
		for _, f := range facts {
			select {
			case s.live <- f:
			default:
				s.lagging = true
				close(s.live)
				delete(h.subs, s)
				goto next
			}
		}
	next:
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		close(s.live)
		delete(h.subs, s)
	}
}

// WatchOptions select facts to watch.
type WatchOptions struct {
	// Namespace, if set, limits the watch to one namespace.
	Namespace *core.Namespace
	// TypeID, if set, limits the watch to one type.
	TypeID string
	// AfterSeq resumes after this seq; 0 replays from the start.
	AfterSeq uint64
	// FromNow skips the replay.
	FromNow bool
}

// Subscription delivers facts in commit order: first the stored ones after the
// cursor, then each new commit.
type Subscription struct {
	j       *Journal
	opts    WatchOptions
	live    chan StoredFact
	lagging bool // written under hub.mu before live is closed
	replay  []StoredFact
	nextSeq uint64 // next stored seq to replay
	endSeq  uint64 // replay covers seqs up to and including this
}

// Watch subscribes to facts matching opts.
func (j *Journal) Watch(ctx context.Context, opts WatchOptions) (*Subscription, error) {
	s := &Subscription{j: j, opts: opts, live: make(chan StoredFact, watchBuffer)}
	j.hub.mu.Lock()
	if j.hub.closed {
		j.hub.mu.Unlock()
		return nil, ErrClosed
	}
	j.hub.subs[s] = struct{}{}
	s.endSeq = j.hub.lastSeq
	j.hub.mu.Unlock()
	s.nextSeq = opts.AfterSeq + 1
	if opts.FromNow {
		s.nextSeq = s.endSeq + 1
	}
	return s, nil
}

// Close ends the subscription.
func (s *Subscription) Close() {
	h := s.j.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.live)
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
	for {
		for len(s.replay) > 0 {
			f := s.replay[0]
			s.replay = s.replay[1:]
			if s.matches(f) {
				return f, nil
			}
		}
		if s.nextSeq <= s.endSeq {
			if err := s.fill(); err != nil {
				return StoredFact{}, err
			}
			continue
		}
		select {
		case f, ok := <-s.live:
			if !ok {
				s.j.hub.mu.Lock()
				lagging := s.lagging
				s.j.hub.mu.Unlock()
				if lagging {
					return StoredFact{}, ErrWatchLagging
				}
				return StoredFact{}, ErrClosed
			}
			if f.Seq <= s.endSeq || !s.matches(f) {
				continue
			}
			return f, nil
		case <-ctx.Done():
			return StoredFact{}, ctx.Err()
		}
	}
}

// fill reads the next page of the replay from the log.
func (s *Subscription) fill() error {
	const page = 256
	return s.j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.Seek(u64(s.nextSeq)); k != nil && len(s.replay) < page; k, v = c.Next() {
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
			s.nextSeq = seq + 1
		}
		if len(s.replay) == 0 {
			s.nextSeq = s.endSeq + 1
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
	raw := b.Get(factKey(loc.key))
	if raw == nil {
		return nil, fmt.Errorf("fact %s missing: %w", loc.key.ID, ErrCorrupt)
	}
	sf, err := DecodeSignedFact(append([]byte(nil), raw...))
	if err != nil {
		return nil, fmt.Errorf("stored fact %s: %w: %w", loc.key.ID, err, ErrCorrupt)
	}
	return sf, nil
}
