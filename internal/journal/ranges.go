package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// Ordered ranges of a namespace, for range-based set reconciliation (DESIGN
// §7). A range is half-open, [lo, hi), in (lamport, id) order; the zero
// FactKey as hi means "no upper bound" (as lo it is the least key anyway), so
// [FactKey{}, FactKey{}) is the whole namespace.
//
// Summaries come from the namespace's range aggregate (aggregate.go), built
// from the facts bucket on first use and kept up to date by the writer after
// every commit. Each call sees the namespace as of one commit: a commit's facts
// appear in the aggregate all at once, before watchers hear of them. Separate
// calls may see successive commits (the set only grows).

// Fingerprint summarises the set of facts in a range: the tagged SHA-256 of
// count(8) ‖ sum(32), big-endian, where sum is the sum of the ids read as
// 256-bit big-endian integers, mod 2^256. Equal sets have equal fingerprints
// and the sum can be taken from subtree sums without touching the facts.
type Fingerprint [32]byte

// tagRangeFingerprint separates range fingerprints from every other hash.
const tagRangeFingerprint core.Tag = "aura/journal/range-fingerprint/v1"

func fingerprintOf(a agg) Fingerprint {
	var b [40]byte
	binary.BigEndian.PutUint64(b[:8], a.count)
	s := a.sum.bytes()
	copy(b[8:], s[:])
	return Fingerprint(core.TaggedHash(tagRangeFingerprint, b[:]))
}

// Limits on what one call may ask for.
const (
	// MaxRangeSplit bounds the parts of one RangeSplit (sync fans out ≈16).
	MaxRangeSplit = 256
	// MaxRangeKeys bounds the keys one RangeKeys returns (sync lists only
	// small ranges).
	MaxRangeKeys = 4096
)

// RangePart is one sub-range of a split, with its summary.
type RangePart struct {
	Lo, Hi      FactKey // [Lo, Hi); a zero Hi is unbounded
	Count       uint64
	Fingerprint Fingerprint
}

func isZeroKey(k FactKey) bool { return k == FactKey{} }

func checkBounds(lo, hi FactKey) error {
	if !isZeroKey(hi) && cmpKey(&lo, &hi) > 0 {
		return fmt.Errorf("range bounds out of order: lo %d/%s is after hi %d/%s: %w", lo.Lamport, lo.ID, hi.Lamport, hi.ID, core.ErrInvalidArgument)
	}
	return nil
}

// Range calls fn on the facts of ns in [lo, hi), in (lamport, id) order, until
// fn returns false. It reads one snapshot; fn runs inside its read
// transaction, so it should not take long per fact.
func (j *Journal) Range(ctx context.Context, ns core.Namespace, lo, hi FactKey, fn func(StoredFact) bool) error {
	if err := checkBounds(lo, hi); err != nil {
		return err
	}
	var hiKey []byte
	if !isZeroKey(hi) {
		hiKey = factKey(hi)
	}
	return j.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketNamespaces).Get(nsKey(ns)) == nil {
			return fmt.Errorf("namespace %s: %w", ns, core.ErrNotFound)
		}
		b := tx.Bucket(bucketFacts).Bucket(nsKey(ns))
		if b == nil {
			return nil
		}
		ids := tx.Bucket(bucketIDs)
		sums := sumsOf(tx, nsKey(ns))
		c := b.Cursor()
		n := 0
		for k, v := c.Seek(factKey(lo)); k != nil; k, v = c.Next() {
			if hiKey != nil && bytes.Compare(k, hiKey) >= 0 {
				return nil
			}
			// Checking every fact would cost more than the check; decoding
			// and checking a fact already dwarfs a poll every 64.
			if n++; n%64 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			fk, err := parseFactKey(k)
			if err != nil {
				return err
			}
			sf, err := decodeStored(fk, v, sumIn(sums, k))
			if err != nil {
				return err
			}
			loc, err := decodeIDEntry(sf.ID, ids.Get(sf.ID[:]))
			if err != nil {
				return err
			}
			if !fn(StoredFact{SignedFact: sf, Seq: loc.seq}) {
				return nil
			}
		}
		return nil
	})
}

// RangeSummary returns the count and fingerprint of ns's facts in [lo, hi) in
// O(log n).
func (j *Journal) RangeSummary(ctx context.Context, ns core.Namespace, lo, hi FactKey) (uint64, Fingerprint, error) {
	if err := checkBounds(lo, hi); err != nil {
		return 0, Fingerprint{}, err
	}
	r, err := j.rangesOf(ctx, ns)
	if err != nil {
		return 0, Fingerprint{}, err
	}
	r.mu.RLock()
	a := r.tree.between(&lo, &hi)
	r.mu.RUnlock()
	return a.count, fingerprintOf(a), nil
}

// RangeSplit cuts [lo, hi) of ns into min(k, count) contiguous parts of as
// equal counts as can be (they differ by at most one), each with its count
// and fingerprint, all from one view. The parts cover [lo, hi) exactly: the
// first starts at lo, the last ends at hi, and each other bound is the key of
// the first fact of its part. An empty range gives one empty part.
func (j *Journal) RangeSplit(ctx context.Context, ns core.Namespace, lo, hi FactKey, k int) ([]RangePart, error) {
	if k < 1 || k > MaxRangeSplit {
		return nil, fmt.Errorf("range split into %d parts, want 1 to %d: %w", k, MaxRangeSplit, core.ErrInvalidArgument)
	}
	if err := checkBounds(lo, hi); err != nil {
		return nil, err
	}
	r, err := j.rangesOf(ctx, ns)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.tree.split(lo, hi, k), nil
}

// RangeKeys returns the keys of ns's facts in [lo, hi) in order, at most limit
// of them, and whether more follow: the id lists of small ranges.
func (j *Journal) RangeKeys(ctx context.Context, ns core.Namespace, lo, hi FactKey, limit int) ([]FactKey, bool, error) {
	if limit < 1 || limit > MaxRangeKeys {
		return nil, false, fmt.Errorf("range key limit %d, want 1 to %d: %w", limit, MaxRangeKeys, core.ErrInvalidArgument)
	}
	if err := checkBounds(lo, hi); err != nil {
		return nil, false, err
	}
	r, err := j.rangesOf(ctx, ns)
	if err != nil {
		return nil, false, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	keys, more := r.tree.keys(lo, hi, limit)
	return keys, more, nil
}

// between is the aggregate of [lo, hi).
func (t *aggTree) between(lo, hi *FactKey) agg {
	a := t.root.agg
	if !isZeroKey(*hi) {
		a = t.prefix(hi)
	}
	a.sub(t.prefix(lo))
	return a
}

func (t *aggTree) split(lo, hi FactKey, k int) []RangePart {
	start := t.prefix(&lo)
	end := t.root.agg
	if !isZeroKey(hi) {
		end = t.prefix(&hi)
	}
	n := end.count - start.count
	if n == 0 {
		a := end
		a.sub(start)
		return []RangePart{{Lo: lo, Hi: hi, Fingerprint: fingerprintOf(a)}}
	}
	parts := int(min(uint64(k), n))
	out := make([]RangePart, parts)
	prev, prevKey := start, lo
	for i := range parts {
		var cut agg
		cutKey := hi
		if i == parts-1 {
			cut = end
		} else {
			// Spread the remainder so sizes differ by at most one.
			r := start.count + n*uint64(i+1)/uint64(parts)
			cut, cutKey, _ = t.atRank(r)
		}
		a := cut
		a.sub(prev)
		out[i] = RangePart{Lo: prevKey, Hi: cutKey, Count: a.count, Fingerprint: fingerprintOf(a)}
		prev, prevKey = cut, cutKey
	}
	return out
}

func (t *aggTree) keys(lo, hi FactKey, limit int) ([]FactKey, bool) {
	var out []FactKey
	more := false
	t.ascend(&lo, func(k *FactKey) bool {
		if !isZeroKey(hi) && cmpKey(k, &hi) >= 0 {
			return false
		}
		if len(out) == limit {
			more = true
			return false
		}
		out = append(out, *k)
		return true
	})
	return out, more
}

// SetIndex is an in-memory index over a namespace's fact ids that another
// package keeps (sync's coded-symbol sketch). The journal feeds it each id of
// the namespace exactly once, under the same lock and at the same moment as
// the range aggregate, so an index and the namespace's summary always
// describe the same set.
type SetIndex interface {
	Insert(id core.FactID)
}

// WithSetIndex runs fn with ns's index called name and the namespace's count
// and fingerprint, all as of one commit. The first call for a name builds the
// index with mk and the ids the range aggregate holds (no disk read beyond the
// aggregate's own build). fn runs under the namespace's read lock, which holds
// up the writer's next commit to ns: it should copy what it needs and return.
func (j *Journal) WithSetIndex(ctx context.Context, ns core.Namespace, name string, mk func() (SetIndex, error), fn func(ix SetIndex, count uint64, fp Fingerprint) error) error {
	r, err := j.rangesOf(ctx, ns)
	if err != nil {
		return err
	}
	r.mu.RLock()
	ix := r.sets[name]
	if ix == nil {
		r.mu.RUnlock()
		if err := r.buildSet(name, mk); err != nil {
			return err
		}
		r.mu.RLock()
		ix = r.sets[name]
	}
	defer r.mu.RUnlock()
	a := r.tree.root.agg
	return fn(ix, a.count, fingerprintOf(a))
}

// buildSet creates the index called name unless a racing call did.
func (r *nsRanges) buildSet(name string, mk func() (SetIndex, error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sets[name] != nil {
		return nil
	}
	ix, err := mk()
	if err != nil {
		return err
	}
	r.tree.ascend(&FactKey{}, func(k *FactKey) bool {
		ix.Insert(k.ID)
		return true
	})
	if r.sets == nil {
		r.sets = map[string]SetIndex{}
	}
	r.sets[name] = ix
	return nil
}

// rangeIndex holds the aggregates of the namespaces that have been asked
// about. An aggregate is built on first use rather than at Open: a build reads
// every key of the namespace (and so every page of its facts), which would add
// to every restart and to idle memory for namespaces never synced.
type rangeIndex struct {
	mu sync.Mutex
	ns map[core.Namespace]*nsRanges
	// Node capacities; tests shrink them to get deep trees from few keys.
	leafCap, innerCap int
}

// nsRanges is one namespace's aggregate. While it is being built, the writer
// parks committed keys in pending (under rangeIndex.mu); the builder folds
// them in when its scan is done, so no commit is missed whichever side of the
// scan's snapshot it fell on (keys seen twice are inserted once).
type nsRanges struct {
	ready   chan struct{} // closed when the build ends
	err     error         // the build's failure, set before ready closes
	built   bool          // guarded by rangeIndex.mu
	pending []FactKey     // guarded by rangeIndex.mu

	mu   sync.RWMutex // guards tree and sets once built
	tree *aggTree
	// sets are other packages' indexes over the same ids (sync's sketches),
	// by name, fed under mu exactly as tree is.
	sets map[string]SetIndex
}

func newRangeIndex() *rangeIndex {
	return &rangeIndex{ns: map[core.Namespace]*nsRanges{}, leafCap: defaultLeafCap, innerCap: defaultInnerCap}
}

// rangesOf returns ns's aggregate, building it if this is the first use.
func (j *Journal) rangesOf(ctx context.Context, ns core.Namespace) (*nsRanges, error) {
	return j.ranges.get(ctx, ns, func(b *treeBuilder) error {
		return j.view(func(tx *bolt.Tx) error { return loadRanges(tx, ns, b) })
	})
}

// get returns the built aggregate of ns; the first caller runs load, later ones
// wait for it. A failed build is forgotten so that the next call tries again.
func (ri *rangeIndex) get(ctx context.Context, ns core.Namespace, load func(*treeBuilder) error) (*nsRanges, error) {
	ri.mu.Lock()
	r := ri.ns[ns]
	if r == nil {
		r = &nsRanges{ready: make(chan struct{})}
		ri.ns[ns] = r
		ri.mu.Unlock()
		ri.build(ns, r, load)
	} else {
		ri.mu.Unlock()
	}
	select {
	case <-r.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, r.err
	}
	return r, nil
}

func (ri *rangeIndex) build(ns core.Namespace, r *nsRanges, load func(*treeBuilder) error) {
	b := newTreeBuilder(ri.leafCap, ri.innerCap)
	err := load(b)
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if err != nil {
		r.err = err
		delete(ri.ns, ns)
	} else {
		t := b.finish()
		for _, k := range r.pending {
			t.insert(k)
		}
		r.tree, r.pending, r.built = t, nil, true
	}
	close(r.ready)
}

// apply adds a commit's facts to the aggregates that exist. The writer calls
// it after the commit and before publishing to watchers. Each namespace's
// facts go in under one lock, so readers see whole commits.
func (ri *rangeIndex) apply(facts []StoredFact) {
	if ri == nil || len(facts) == 0 {
		return
	}
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if len(ri.ns) == 0 {
		return
	}
	var locked []*nsRanges
	for _, sf := range facts {
		r := ri.ns[sf.Namespace]
		if r == nil {
			continue
		}
		if !r.built {
			r.pending = append(r.pending, sf.Key())
			continue
		}
		if !lockedHas(locked, r) {
			r.mu.Lock()
			locked = append(locked, r)
		}
		// A build whose snapshot already held this commit has the key, and
		// so do the sets built from it since: feed them new keys only.
		if !r.tree.insert(sf.Key()) {
			continue
		}
		for _, ix := range r.sets {
			ix.Insert(sf.ID)
		}
	}
	for _, r := range locked {
		r.mu.Unlock()
	}
}

// lockedHas is a linear search: a commit touches few namespaces.
func lockedHas(locked []*nsRanges, r *nsRanges) bool {
	for _, l := range locked {
		if l == r {
			return true
		}
	}
	return false
}

// loadRanges feeds ns's fact keys, in order, to b.
func loadRanges(tx *bolt.Tx, ns core.Namespace, b *treeBuilder) error {
	if tx.Bucket(bucketNamespaces).Get(nsKey(ns)) == nil {
		return fmt.Errorf("namespace %s: %w", ns, core.ErrNotFound)
	}
	fb := tx.Bucket(bucketFacts).Bucket(nsKey(ns))
	if fb == nil {
		return nil
	}
	c := fb.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		fk, err := parseFactKey(k)
		if err != nil {
			return err
		}
		if err := b.add(fk); err != nil {
			return err
		}
	}
	return nil
}

// Has reports whether ns holds the fact id: what reconciliation asks of ids a
// peer lists, without reading or verifying the facts.
func (j *Journal) Has(ctx context.Context, ns core.Namespace, id core.FactID) (bool, error) {
	var found bool
	err := j.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIDs).Get(id[:])
		if v == nil {
			return nil
		}
		loc, err := decodeIDEntry(id, v)
		if err != nil {
			return err
		}
		found = loc.ns == ns
		return nil
	})
	return found, err
}
