package sync

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"math/rand/v2"
	"slices"
	stdsync "sync"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// memStore is the Store of the reconciliation benchmarks: a namespace held in
// memory as a sorted slice of keys with prefix sums of the ids, so that a
// million-fact namespace costs a second to set up instead of the minutes a
// journal would take, and every summary costs O(log n) as the journal's
// aggregate does. The facts are real encodings (Get and Range rebuild them
// from their index), so pushes carry facts and a session ends the way it
// does between journals; Receive records what arrives, which is what the
// tests compare with the brute-force difference.
type memStore struct {
	u    *memUniverse
	pos  []uint32   // universe positions held, ascending: (lamport, id) order
	held []uint64   // bitset over universe positions
	sums []sum256le // sums[r]: the ids of pos[:r] added mod 2^256
	mu   stdsync.Mutex
	sets map[string]journal.SetIndex
	got  []core.FactID // received, in arrival order
}

// memUniverse is the pool of synthetic facts memStores draw their sets from:
// fact i has lamport i/4+2 (four facts per lamport, as concurrent writers
// give) and its index as payload, so its bytes can be rebuilt from i alone.
type memUniverse struct {
	ns     core.Namespace
	author core.DeviceID
	keys   []journal.FactKey // (lamport, id) order
	src    []uint32          // keys[p] is fact src[p]
	byID   []uint32          // positions sorted by id, for Has and Get
	sigs   [][]byte          // by fact index; nil: unsigned (zero signatures)
}

const memTypeID = "bench.note/v1"

// memFingerprintTag is the journal's range fingerprint tag, so that a
// memStore's summaries equal a journal's over the same set
// (TestMemStoreMatchesJournal).
const memFingerprintTag core.Tag = "aura/journal/range-fingerprint/v1"

func memFact(ns core.Namespace, author core.DeviceID, i int) journal.Fact {
	var payload [8]byte
	binary.BigEndian.PutUint64(payload[:], uint64(i))
	return journal.Fact{Namespace: ns, TypeID: memTypeID, Author: author, Lamport: uint64(i/4 + 2), Payload: payload[:]}
}

// newMemUniverse makes n facts of ns. With a signer they are signed by it
// (for comparison with a journal, which verifies); without, their signatures
// are zero bytes: neither memStore nor the session verifies them.
func newMemUniverse(tb testing.TB, ns core.Namespace, n int, signer *journal.KeySigner) *memUniverse {
	tb.Helper()
	u := &memUniverse{ns: ns, keys: make([]journal.FactKey, n), src: make([]uint32, n)}
	if signer != nil {
		u.author = signer.DeviceID()
		u.sigs = make([][]byte, n)
	} else {
		u.author = core.DeviceID{0xa0}
	}
	// Two halves in parallel: hashing a million bodies is most of the
	// benchmark's setup.
	var wg stdsync.WaitGroup
	errs := make([]error, 2)
	for h := range 2 {
		wg.Go(func() {
			for i := h * n / 2; i < (h+1)*n/2; i++ {
				f := memFact(ns, u.author, i)
				if signer != nil {
					sf, err := journal.SignFact(signer, f)
					if err != nil {
						errs[h] = err
						return
					}
					u.sigs[i] = sf.Signature
					u.keys[i] = sf.Key()
				} else {
					body, err := journal.EncodeBody(&f)
					if err != nil {
						errs[h] = err
						return
					}
					u.keys[i] = journal.FactKey{Lamport: f.Lamport, ID: journal.FactIDOf(body)}
				}
				u.src[i] = uint32(i)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	// Facts are generated in lamport order; within a lamport, order by id.
	for g := 0; g < n; g += 4 {
		e := min(g+4, n)
		idx := make([]int, e-g)
		for i := range idx {
			idx[i] = g + i
		}
		slices.SortFunc(idx, func(a, b int) int { return bytes.Compare(u.keys[a].ID[:], u.keys[b].ID[:]) })
		keys := make([]journal.FactKey, len(idx))
		src := make([]uint32, len(idx))
		for i, j := range idx {
			keys[i], src[i] = u.keys[j], u.src[j]
		}
		copy(u.keys[g:e], keys)
		copy(u.src[g:e], src)
	}
	u.byID = make([]uint32, n)
	for p := range u.byID {
		u.byID[p] = uint32(p)
	}
	slices.SortFunc(u.byID, func(a, b uint32) int { return bytes.Compare(u.keys[a].ID[:], u.keys[b].ID[:]) })
	return u
}

// find returns the universe position of id.
func (u *memUniverse) find(id core.FactID) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(u.byID, id, func(p uint32, id core.FactID) int { return bytes.Compare(u.keys[p].ID[:], id[:]) })
	if !ok {
		return 0, false
	}
	return u.byID[i], true
}

// fact rebuilds the fact at position p.
func (u *memUniverse) fact(p uint32) (journal.StoredFact, error) {
	i := int(u.src[p])
	f := memFact(u.ns, u.author, i)
	body, err := journal.EncodeBody(&f)
	if err != nil {
		return journal.StoredFact{}, err
	}
	sig := make([]byte, ed25519.SignatureSize)
	if u.sigs != nil {
		sig = u.sigs[i]
	}
	return journal.StoredFact{SignedFact: &journal.SignedFact{Fact: f, ID: u.keys[p].ID, Body: body, Signature: sig}, Seq: uint64(i) + 1}, nil
}

// store holds the universe's first n positions (a prefix in (lamport, id)
// order, i.e. facts 0..n-1 when n is a multiple of 4).
func (u *memUniverse) store(n int) *memStore {
	pos := make([]uint32, n)
	for p := range pos {
		pos[p] = uint32(p)
	}
	return u.storeOf(pos)
}

func (u *memUniverse) storeOf(pos []uint32) *memStore {
	s := &memStore{u: u, pos: pos, held: make([]uint64, (len(u.keys)+63)/64), sums: make([]sum256le, len(pos)+1), sets: map[string]journal.SetIndex{}}
	for r, p := range pos {
		s.held[p/64] |= 1 << (p % 64)
		s.sums[r+1] = s.sums[r].add(idSum256(&u.keys[p].ID))
	}
	return s
}

// without is s minus the positions drop (those it holds). Its sketches are
// s's with the dropped ids removed: rebuilding a million-id sketch costs half
// a second per side and variant, removing a few thousand ids microseconds
// (TestReconcileMemStore checks the two agree).
func (s *memStore) without(tb testing.TB, drop []uint32) *memStore {
	tb.Helper()
	gone := make(map[uint32]bool, len(drop))
	for _, p := range drop {
		if s.has(p) {
			gone[p] = true
		}
	}
	pos := make([]uint32, 0, len(s.pos)-len(gone))
	for _, p := range s.pos {
		if !gone[p] {
			pos = append(pos, p)
		}
	}
	d := s.u.storeOf(pos)
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, ix := range s.sets {
		sk, ok := ix.(*sketch)
		if !ok {
			continue // built from the ids on first use instead
		}
		c := &sketch{enc: sk.enc.Clone(), key: sk.key}
		for p := range gone {
			if err := c.enc.Remove(s.u.keys[p].ID); err != nil {
				tb.Fatal(err)
			}
		}
		d.sets[name] = c
	}
	return d
}

func (s *memStore) has(p uint32) bool { return s.held[p/64]&(1<<(p%64)) != 0 }

// ids lists the held ids in (lamport, id) order.
func (s *memStore) ids() []core.FactID {
	out := make([]core.FactID, len(s.pos))
	for r, p := range s.pos {
		out[r] = s.u.keys[p].ID
	}
	return out
}

// sketches returns the set indexes built so far, by name.
func (s *memStore) sketches() map[string]journal.SetIndex {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.sets)
}

// received returns what Receive took, and forgets it.
func (s *memStore) received() []core.FactID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.got
	s.got = nil
	return out
}

func (s *memStore) checkNS(ns core.Namespace) error {
	if ns != s.u.ns {
		return fmt.Errorf("namespace %s: %w", ns, core.ErrNotFound)
	}
	return nil
}

// rank is the number of held keys below k.
func (s *memStore) rank(k journal.FactKey) int {
	r, _ := slices.BinarySearchFunc(s.pos, k, func(p uint32, k journal.FactKey) int {
		if s.u.keys[p].Less(k) {
			return -1
		}
		return 1
	})
	return r
}

// ranks are the bounds of [lo, hi) in s.pos; a zero hi is unbounded.
func (s *memStore) ranks(lo, hi journal.FactKey) (int, int, error) {
	if hi == (journal.FactKey{}) {
		return s.rank(lo), len(s.pos), nil
	}
	if hi.Less(lo) {
		return 0, 0, fmt.Errorf("range bounds out of order: %w", core.ErrInvalidArgument)
	}
	return s.rank(lo), s.rank(hi), nil
}

func (s *memStore) summary(r0, r1 int) (uint64, journal.Fingerprint) {
	c := uint64(r1 - r0)
	sum := s.sums[r1].sub(s.sums[r0])
	var b [40]byte
	binary.BigEndian.PutUint64(b[:8], c)
	for i := range 4 {
		binary.BigEndian.PutUint64(b[8+8*i:], sum[3-i])
	}
	return c, journal.Fingerprint(core.TaggedHash(memFingerprintTag, b[:]))
}

func (s *memStore) ReceiveBatch(_ context.Context, _ core.DeviceID, facts []*journal.SignedFact) ([]journal.ReceiveResult, error) {
	out := make([]journal.ReceiveResult, len(facts))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, sf := range facts {
		if err := s.checkNS(sf.Namespace); err != nil {
			out[i].Err = err
			continue
		}
		s.got = append(s.got, sf.ID)
		out[i].Received = journal.Received{Committed: journal.Committed{ID: sf.ID, Namespace: sf.Namespace, Lamport: sf.Lamport}}
	}
	return out, nil
}

func (s *memStore) Get(_ context.Context, id core.FactID) (journal.StoredFact, error) {
	p, ok := s.u.find(id)
	if !ok || !s.has(p) {
		return journal.StoredFact{}, fmt.Errorf("fact %s: %w", id, core.ErrNotFound)
	}
	return s.u.fact(p)
}

// FactIDsWithPrefix is the journal's: the held ids whose hex starts with
// prefix (an even number of digits here), in id order.
func (s *memStore) FactIDsWithPrefix(_ context.Context, prefix string, limit int) ([]core.FactID, error) {
	pre, err := hex.DecodeString(prefix)
	if err != nil {
		return nil, fmt.Errorf("prefix %q: %w", prefix, core.ErrInvalidArgument)
	}
	i, _ := slices.BinarySearchFunc(s.u.byID, pre, func(p uint32, pre []byte) int { return bytes.Compare(s.u.keys[p].ID[:len(pre)], pre) })
	var out []core.FactID
	for ; i < len(s.u.byID) && len(out) < limit; i++ {
		p := s.u.byID[i]
		if !bytes.HasPrefix(s.u.keys[p].ID[:], pre) {
			break
		}
		if s.has(p) {
			out = append(out, s.u.keys[p].ID)
		}
	}
	return out, nil
}

func (s *memStore) Has(_ context.Context, ns core.Namespace, id core.FactID) (bool, error) {
	p, ok := s.u.find(id)
	return ok && ns == s.u.ns && s.has(p), nil
}

func (s *memStore) Range(ctx context.Context, ns core.Namespace, lo, hi journal.FactKey, fn func(journal.StoredFact) bool) error {
	if err := s.checkNS(ns); err != nil {
		return err
	}
	r0, r1, err := s.ranks(lo, hi)
	if err != nil {
		return err
	}
	for _, p := range s.pos[r0:r1] {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := s.u.fact(p)
		if err != nil {
			return err
		}
		if !fn(f) {
			return nil
		}
	}
	return nil
}

func (s *memStore) RangeSummary(_ context.Context, ns core.Namespace, lo, hi journal.FactKey) (uint64, journal.Fingerprint, error) {
	if err := s.checkNS(ns); err != nil {
		return 0, journal.Fingerprint{}, err
	}
	r0, r1, err := s.ranks(lo, hi)
	if err != nil {
		return 0, journal.Fingerprint{}, err
	}
	c, fp := s.summary(r0, r1)
	return c, fp, nil
}

// RangeSplit follows journal.RangeSplit: min(k, count) parts whose counts
// differ by at most one, the first starting at lo, the others at the key of
// their first element, the last ending at hi; an empty range is one part.
func (s *memStore) RangeSplit(_ context.Context, ns core.Namespace, lo, hi journal.FactKey, k int) ([]journal.RangePart, error) {
	if k < 1 || k > journal.MaxRangeSplit {
		return nil, fmt.Errorf("range split into %d parts: %w", k, core.ErrInvalidArgument)
	}
	if err := s.checkNS(ns); err != nil {
		return nil, err
	}
	r0, r1, err := s.ranks(lo, hi)
	if err != nil {
		return nil, err
	}
	n := r1 - r0
	if n == 0 {
		_, fp := s.summary(r0, r1)
		return []journal.RangePart{{Lo: lo, Hi: hi, Fingerprint: fp}}, nil
	}
	parts := min(k, n)
	out := make([]journal.RangePart, parts)
	prev, prevKey := r0, lo
	for i := range parts {
		cut, cutKey := r1, hi
		if i < parts-1 {
			cut = r0 + n*(i+1)/parts
			cutKey = s.u.keys[s.pos[cut]]
		}
		c, fp := s.summary(prev, cut)
		out[i] = journal.RangePart{Lo: prevKey, Hi: cutKey, Count: c, Fingerprint: fp}
		prev, prevKey = cut, cutKey
	}
	return out, nil
}

func (s *memStore) RangeKeys(_ context.Context, ns core.Namespace, lo, hi journal.FactKey, limit int) ([]journal.FactKey, bool, error) {
	if limit < 1 || limit > journal.MaxRangeKeys {
		return nil, false, fmt.Errorf("range key limit %d: %w", limit, core.ErrInvalidArgument)
	}
	if err := s.checkNS(ns); err != nil {
		return nil, false, err
	}
	r0, r1, err := s.ranks(lo, hi)
	if err != nil {
		return nil, false, err
	}
	e := min(r1, r0+limit)
	out := make([]journal.FactKey, 0, e-r0)
	for _, p := range s.pos[r0:e] {
		out = append(out, s.u.keys[p])
	}
	return out, r1 > e, nil
}

// WithSetIndex builds an index from every held id on its first use, as the
// journal does, unless without derived it already.
func (s *memStore) WithSetIndex(_ context.Context, ns core.Namespace, name string, mk func() (journal.SetIndex, error), fn func(ix journal.SetIndex, count uint64, fp journal.Fingerprint) error) error {
	if err := s.checkNS(ns); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.sets[name]
	if ix == nil {
		var err error
		if ix, err = mk(); err != nil {
			return err
		}
		for _, p := range s.pos {
			ix.Insert(s.u.keys[p].ID)
		}
		s.sets[name] = ix
	}
	c, fp := s.summary(0, len(s.pos))
	return fn(ix, c, fp)
}

// sum256le is a 256-bit integer, least significant limb first; an id reads
// as big-endian, as in the journal's aggregate.
type sum256le [4]uint64

func idSum256(id *core.FactID) sum256le {
	return sum256le{binary.BigEndian.Uint64(id[24:]), binary.BigEndian.Uint64(id[16:]), binary.BigEndian.Uint64(id[8:]), binary.BigEndian.Uint64(id[0:])}
}

func (a sum256le) add(b sum256le) sum256le {
	var c uint64
	a[0], c = bits.Add64(a[0], b[0], 0)
	a[1], c = bits.Add64(a[1], b[1], c)
	a[2], c = bits.Add64(a[2], b[2], c)
	a[3], _ = bits.Add64(a[3], b[3], c)
	return a
}

func (a sum256le) sub(b sum256le) sum256le {
	var c uint64
	a[0], c = bits.Sub64(a[0], b[0], 0)
	a[1], c = bits.Sub64(a[1], b[1], c)
	a[2], c = bits.Sub64(a[2], b[2], c)
	a[3], _ = bits.Sub64(a[3], b[3], c)
	return a
}

// TestMemStoreMatchesJournal: over the same facts, memStore answers every
// range question as the journal does, so the benchmark's figures are the
// journal's. (The journal also holds the namespace's genesis, at lamport 1;
// the ranges asked start past it.)
func TestMemStoreMatchesJournal(t *testing.T) {
	ctx := context.Background()
	p := newPair(t, Options{})
	const n = 600
	u := newMemUniverse(t, p.ns, n, p.a.signer)
	st := u.store(n)
	for q := range uint32(n) {
		f, err := u.fact(q)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.a.j.Append(ctx, f.SignedFact); err != nil {
			t.Fatal(err)
		}
	}
	// Bounds: fact keys, the keys just past them, and bare lamports.
	bounds := []journal.FactKey{{Lamport: 2}}
	for q := 0; q < n; q += 7 {
		k := u.keys[q]
		bounds = append(bounds, k, successor(k), journal.FactKey{Lamport: k.Lamport})
	}
	slices.SortFunc(bounds, func(a, b journal.FactKey) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	rng := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		i := rng.IntN(len(bounds))
		lo, hi := bounds[i], journal.FactKey{}
		if j := i + rng.IntN(len(bounds)-i+1); j < len(bounds) {
			hi = bounds[j]
		}
		jc, jf, err := p.a.j.RangeSummary(ctx, p.ns, lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		mc, mf, err := st.RangeSummary(ctx, p.ns, lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		if jc != mc || jf != mf {
			t.Fatalf("summary of [%v, %v): journal %d %x, memStore %d %x", lo, hi, jc, jf[:4], mc, mf[:4])
		}
		for _, k := range []int{1, 3, rangeFanout, journal.MaxRangeSplit} {
			jp, err := p.a.j.RangeSplit(ctx, p.ns, lo, hi, k)
			if err != nil {
				t.Fatal(err)
			}
			mp, err := st.RangeSplit(ctx, p.ns, lo, hi, k)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(jp, mp) {
				t.Fatalf("split of [%v, %v) in %d: journal %v, memStore %v", lo, hi, k, jp, mp)
			}
		}
		for _, limit := range []int{5, idListMax, journal.MaxRangeKeys} {
			jk, jm, err := p.a.j.RangeKeys(ctx, p.ns, lo, hi, limit)
			if err != nil {
				t.Fatal(err)
			}
			mk, mm, err := st.RangeKeys(ctx, p.ns, lo, hi, limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(jk, mk) || jm != mm {
				t.Fatalf("keys of [%v, %v) up to %d: journal %d (more %t), memStore %d (more %t)", lo, hi, limit, len(jk), jm, len(mk), mm)
			}
		}
		var jr, mr [][]byte
		if err := p.a.j.Range(ctx, p.ns, lo, hi, func(f journal.StoredFact) bool { jr = append(jr, f.Encode()); return len(jr) < 9 }); err != nil {
			t.Fatal(err)
		}
		if err := st.Range(ctx, p.ns, lo, hi, func(f journal.StoredFact) bool { mr = append(mr, f.Encode()); return len(mr) < 9 }); err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(jr, mr, bytes.Equal) {
			t.Fatalf("facts of [%v, %v): journal %d, memStore %d, or their bytes differ", lo, hi, len(jr), len(mr))
		}
	}
	for _, q := range []uint32{0, n / 2, n - 1} {
		id := u.keys[q].ID
		jf, err := p.a.j.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		mf, err := st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(jf.Encode(), mf.Encode()) {
			t.Fatalf("fact %s: the bytes differ", id)
		}
		if has, err := st.Has(ctx, p.ns, id); err != nil || !has {
			t.Fatalf("Has(%s) = %t, %v", id, has, err)
		}
	}
	if has, _ := st.Has(ctx, p.ns, core.FactID{1}); has {
		t.Fatal("Has an id it never held")
	}
	if _, err := st.Get(ctx, core.FactID{1}); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Get of an unknown id: %v, want ErrNotFound", err)
	}
}
