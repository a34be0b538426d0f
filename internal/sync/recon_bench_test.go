package sync

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	stdsync "sync"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

// The cost of reconciliation (issue #13): bytes each way and round trips of
// one session between two memStores, for the sketch tier, the range tier and
// a naive exchange of every id.
//
//	go test -run '^$' -bench Reconcile -benchtime 1x ./internal/sync/
//
// Bytes are sync payloads (version, session id and body; not the transport's
// envelope) of every message but batches: batches carry the facts, which any
// method sends once, and their framing (about 20 B a batch). Round trips count
// the first message and every turn of the traffic from responder→initiator
// back to initiator→responder; flights count every turn, so a session whose
// last word is the initiator's has flights = 2·round_trips − 1.

// reconCase is a pair of sets: a (the initiator) and b (the responder) share
// all but onlyA and onlyB ids; b holds n ids, a n − onlyB + onlyA.
type reconCase struct {
	name         string
	onlyA, onlyB int
}

// reconCases: d ∈ {0, 1, 100, 10k} split as evenly as can be (d = 1 is one
// id at b; "1a" puts it at a), d = 100 all at b, and d = 50, the largest
// split difference the range tier handles in one piece (see
// BenchmarkReconcile).
var reconCases = []reconCase{
	{"0", 0, 0},
	{"1", 0, 1},
	{"1a", 1, 0},
	{"50", 25, 25},
	{"100", 50, 50},
	{"100b", 0, 100},
	{"10k", 5000, 5000},
}

// reconSpare is how many facts past n a base set holds, for the ids only a
// holds.
const reconSpare = 5000

// reconTier is a way to reconcile. Options{MaxSketch: 1} forces ranges: the
// responder answers "exhausted" to the open (when the counts differ) or to
// its first two symbols (when they do not), so the range tier pays one round
// trip of sketch first (a 118 B open and a 17 B reply at n = 1M).
type reconTier struct {
	name string
	o    Options
	mode Mode // the mode a session with a difference ends in
}

var reconTiers = []reconTier{
	{"sketch", Options{}, ModeSketch},
	{"range", Options{MaxSketch: 1}, ModeRange},
}

// traffic records a session's messages in the order the hub sends them (it
// calls its tamper hook under its lock).
type traffic struct {
	mu        stdsync.Mutex
	initiator core.DeviceID
	sums      trafficSums
	last      int // direction of the last reconciliation message, -1: none
}

// trafficSums is what a session sent.
type trafficSums struct {
	recon      [2]uint64 // [0]: initiator→responder, [1]: back
	facts      [2]uint64 // batch payloads
	msgs       int
	roundTrips int
	flights    int
}

func (s *trafficSums) add(o trafficSums) {
	for i := range 2 {
		s.recon[i] += o.recon[i]
		s.facts[i] += o.facts[i]
	}
	s.msgs += o.msgs
	s.roundTrips += o.roundTrips
	s.flights += o.flights
}

func (t *traffic) observe(from core.DeviceID, typ string, p []byte) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	dir := 1
	if from == t.initiator {
		dir = 0
	}
	if typ == TypeBatch {
		t.sums.facts[dir] += uint64(len(p))
		return p
	}
	t.sums.recon[dir] += uint64(len(p))
	t.sums.msgs++
	if dir != t.last {
		t.sums.flights++
		if dir == 0 {
			t.sums.roundTrips++
		}
	}
	t.last = dir
	return p
}

func (t *traffic) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sums, t.last = trafficSums{}, -1
}

func (t *traffic) snapshot() trafficSums {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sums
}

// reconPair is two syncers over memStores on one hub: a initiates, b
// responds.
type reconPair struct {
	h      *hub
	a, b   *Syncer
	peer   core.DeviceID
	tr     *traffic
	ended  chan bool // b's sessions, as they end: failed or not
	closed stdsync.Once
}

func newReconPair(tb testing.TB, ns core.Namespace, stA, stB Store, o Options) *reconPair {
	tb.Helper()
	idA, idB := core.DeviceID{0x0a}, core.DeviceID{0x0b}
	rp := &reconPair{h: newHub(), peer: idB, tr: &traffic{initiator: idA, last: -1}, ended: make(chan bool, 4)}
	rp.h.tamper = rp.tr.observe
	sh := Shared{Namespace: ns, Context: core.ContextID(ns.ID), Secret: []byte("reconciliation benchmark")}
	o.Rand, o.Interval = cryptoRandReader{}, -1
	oB := o
	oB.Observe = func(_ Mode, failed bool) { rp.ended <- failed }
	rp.a = New(rp.h.node(idA), stA, staticShares{self: idA, peers: []core.DeviceID{idB}, sh: sh}, allowAll{}, o)
	rp.b = New(rp.h.node(idB), stB, staticShares{self: idB, peers: []core.DeviceID{idA}, sh: sh}, allowAll{}, oB)
	tb.Cleanup(rp.close)
	return rp
}

func (rp *reconPair) close() {
	rp.closed.Do(func() {
		rp.a.Close()
		rp.b.Close()
		rp.h.close()
	})
}

// initiate runs one session from a; it returns when a's side ends.
func (rp *reconPair) initiate(tb testing.TB, ctx context.Context) Progress {
	tb.Helper()
	res, _ := rp.a.SyncNow(ctx, rp.peer, core.Namespace{}, nil)
	if len(res) != 1 {
		tb.Fatalf("%d sessions, want 1", len(res))
	}
	return res[0]
}

// responded waits for b's side of the session to end and says whether it
// failed.
func (rp *reconPair) responded(tb testing.TB, ctx context.Context) bool {
	tb.Helper()
	select {
	case failed := <-rp.ended:
		return failed
	case <-ctx.Done():
		tb.Fatal("the responder's session did not end")
		return true
	}
}

// misbehaviour lists what the hub heard of a peer's violations.
func (rp *reconPair) misbehaviour() map[string]int {
	rp.h.mu.Lock()
	defer rp.h.mu.Unlock()
	return maps.Clone(rp.h.misbeh)
}

// warmSketch has base build its sketch through a session of its own (so
// with the engine's own index name and constructor), for without to derive
// the sides' sketches from.
func warmSketch(tb testing.TB, base *memStore) {
	tb.Helper()
	rp := newReconPair(tb, base.u.ns, base, base, Options{})
	defer rp.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := rp.initiate(tb, ctx)
	if failed := rp.responded(tb, ctx); failed || res.Mode != ModeEqual || res.Phase != PhaseDone {
		tb.Fatalf("a set against itself: %+v (responder failed: %t)", res, failed)
	}
	if k := len(base.sketches()); k != 1 {
		tb.Fatalf("%d set indexes after a session, want 1", k)
	}
}

// sides draws the case's two sets from base, which holds the universe's
// first n+reconSpare positions: the ids only at a and only at b are random
// among the first n+onlyA positions, the rest of those are shared, and the
// positions past them are dropped from both.
func (c reconCase) sides(tb testing.TB, base *memStore, n int, seed uint64) (a, b *memStore) {
	tb.Helper()
	limit := n + c.onlyA
	if c.onlyA > reconSpare || limit > len(base.pos) || c.onlyB > n {
		tb.Fatalf("case %s does not fit n = %d in a base of %d", c.name, n, len(base.pos))
	}
	rng := rand.New(rand.NewPCG(uint64(n), seed))
	picked := map[uint32]bool{}
	var xa, xb []uint32
	for len(xa)+len(xb) < c.onlyA+c.onlyB {
		p := uint32(rng.IntN(limit))
		if picked[p] {
			continue
		}
		picked[p] = true
		if len(xa) < c.onlyA {
			xa = append(xa, p)
		} else {
			xb = append(xb, p)
		}
	}
	var tail []uint32
	for p := limit; p < len(base.pos); p++ {
		tail = append(tail, uint32(p))
	}
	return base.without(tb, append(xb, tail...)), base.without(tb, append(xa, tail...))
}

// difference is the brute-force set difference: the ids of a not in b and
// of b not in a, by a merge of the two sorted position lists.
func difference(a, b *memStore) (onlyA, onlyB []core.FactID) {
	i, j := 0, 0
	for i < len(a.pos) || j < len(b.pos) {
		switch {
		case j == len(b.pos) || (i < len(a.pos) && a.pos[i] < b.pos[j]):
			onlyA = append(onlyA, a.u.keys[a.pos[i]].ID)
			i++
		case i == len(a.pos) || b.pos[j] < a.pos[i]:
			onlyB = append(onlyB, b.u.keys[b.pos[j]].ID)
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}

// sameIDSet reports whether got holds exactly want's ids, each once.
func sameIDSet(got, want []core.FactID) bool {
	cmpID := func(x, y core.FactID) int { return bytes.Compare(x[:], y[:]) }
	g, w := slices.Clone(got), slices.Clone(want)
	slices.SortFunc(g, cmpID)
	slices.SortFunc(w, cmpID)
	return slices.Equal(g, w)
}

// reconcile runs one session between a and b on rp. If it succeeds, it
// checks that each side received exactly what it lacked, and nothing was
// counted as misbehaviour; ok is false if the session failed.
func reconcile(tb testing.TB, rp *reconPair, a, b *memStore, timed func(bool)) (res Progress, tr trafficSums, ok bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rp.tr.reset()
	a.received()
	b.received()
	timed(true)
	res = rp.initiate(tb, ctx)
	timed(false)
	failed := rp.responded(tb, ctx)
	tr = rp.tr.snapshot()
	if failed || res.Phase != PhaseDone || res.Err != "" {
		return res, tr, false
	}
	onlyA, onlyB := difference(a, b)
	if got := a.received(); !sameIDSet(got, onlyB) {
		tb.Fatalf("a received %d facts, want the %d only b held", len(got), len(onlyB))
	}
	if got := b.received(); !sameIDSet(got, onlyA) {
		tb.Fatalf("b received %d facts, want the %d only a held", len(got), len(onlyA))
	}
	if m := rp.misbehaviour(); len(m) > 0 {
		tb.Fatalf("misbehaviour reported: %v", m)
	}
	return res, tr, true
}

// naiveBytes is what sending count ids costs as want-style id lists: 32 B an
// id, and per message of at most maxIDs the header and the list's length.
func naiveBytes(count int) uint64 {
	var total uint64
	for count > 0 {
		k := min(count, maxIDs)
		total += 9 + uint64(len(binary.AppendUvarint(nil, uint64(k)))) + 32*uint64(k)
		count -= k
	}
	return total
}

func shortCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// BenchmarkReconcile: n ids per side, the differences of reconCases, each
// tier. Metrics per session: bytes_AtoB (initiator→responder), bytes_BtoA,
// bytes_total, round_trips, flights, msgs, failed; ns/op is the initiator's
// session. The whole run (-benchtime 1x) takes about 15 s on two cores.
//
// A failed session is reported (failed = 1, with what it sent until then)
// rather than fatal: the engine's limits end some of these sessions (a range
// message past maxRanges ranges once about 60 ranges differ at one level; a
// responder that decodes within a round taking the rest of the round's
// symbols for a protocol violation), and the figures say how far they got.
func BenchmarkReconcile(b *testing.B) {
	sizes := []int{10_000, 100_000, 1_000_000}
	ns := core.ContextNamespace(core.ContextID{0xbe, 0x4c})
	var u *memUniverse
	universe := func() *memUniverse {
		if u == nil {
			u = newMemUniverse(b, ns, sizes[len(sizes)-1]+reconSpare, nil)
		}
		return u
	}
	for _, n := range sizes {
		var base *memStore
		for ci, c := range reconCases {
			var sa, sb *memStore
			sets := func(b *testing.B) (*memStore, *memStore) {
				if base == nil {
					base = universe().store(n + reconSpare)
					warmSketch(b, base)
				}
				if sa == nil {
					sa, sb = c.sides(b, base, n, uint64(ci))
				}
				return sa, sb
			}
			for _, tier := range reconTiers {
				b.Run(fmt.Sprintf("n=%s/d=%s/%s", shortCount(n), c.name, tier.name), func(b *testing.B) {
					sa, sb := sets(b)
					rp := newReconPair(b, ns, sa, sb, tier.o)
					timed := func(on bool) {
						if on {
							b.StartTimer()
						} else {
							b.StopTimer()
						}
					}
					var sum trafficSums
					failed := 0
					b.StopTimer()
					b.ResetTimer()
					for range b.N {
						res, tr, ok := reconcile(b, rp, sa, sb, timed)
						sum.add(tr)
						if !ok {
							failed++
							b.Logf("session failed: %s after %d rounds (misbehaviour %v)", res.Err, res.Rounds, rp.misbehaviour())
							continue
						}
						want := tier.mode
						if c.onlyA+c.onlyB == 0 {
							want = ModeEqual
						}
						if res.Mode != want {
							b.Fatalf("mode %s, want %s", res.Mode, want)
						}
					}
					per := func(v uint64) float64 { return float64(v) / float64(b.N) }
					b.ReportMetric(per(sum.recon[0]), "bytes_AtoB")
					b.ReportMetric(per(sum.recon[1]), "bytes_BtoA")
					b.ReportMetric(per(sum.recon[0]+sum.recon[1]), "bytes_total")
					b.ReportMetric(per(uint64(sum.roundTrips)), "round_trips")
					b.ReportMetric(per(uint64(sum.flights)), "flights")
					b.ReportMetric(per(uint64(sum.msgs)), "msgs")
					b.ReportMetric(per(uint64(failed)), "failed")
				})
			}
			b.Run(fmt.Sprintf("n=%s/d=%s/naive", shortCount(n), c.name), func(b *testing.B) {
				// Computed: each side lists its ids, in one flight each way.
				na, nb := n-c.onlyB+c.onlyA, n
				b.ReportMetric(float64(naiveBytes(na)), "bytes_AtoB")
				b.ReportMetric(float64(naiveBytes(nb)), "bytes_BtoA")
				b.ReportMetric(float64(naiveBytes(na)+naiveBytes(nb)), "bytes_total")
				b.ReportMetric(1, "round_trips")
				b.ReportMetric(2, "flights")
				b.ReportMetric(float64((na+maxIDs-1)/maxIDs+(nb+maxIDs-1)/maxIDs), "msgs")
			})
		}
	}
}

// TestReconcileMemStore: on memStores, a session of either tier leaves each
// side with exactly the facts the other alone held, and a sketch derived by
// without is the one a build from the ids gives.
func TestReconcileMemStore(t *testing.T) {
	const n = 2000
	ns := core.ContextNamespace(core.ContextID{0x7e, 0x57})
	u := newMemUniverse(t, ns, n+reconSpare, nil)
	base := u.store(n + reconSpare)
	warmSketch(t, base)
	cases := []reconCase{{"300+200", 300, 200}}
	for _, c := range reconCases {
		if c.onlyA+c.onlyB <= 100 {
			cases = append(cases, c)
		}
	}
	tiers := append(slices.Clone(reconTiers), reconTier{"past the cache", Options{CacheLen: 16}, ModeSketch})
	for ci, c := range cases {
		for _, tier := range tiers {
			t.Run(c.name+"/"+tier.name, func(t *testing.T) {
				a, b := c.sides(t, base, n, uint64(ci))
				if tier.o.CacheLen != 0 {
					// Another cache length: fresh stores build their own
					// sketches, and past the cache the session streams ids.
					a, b = u.storeOf(a.pos), u.storeOf(b.pos)
				}
				rp := newReconPair(t, ns, a, b, tier.o)
				res, tr, ok := reconcile(t, rp, a, b, func(bool) {})
				if !ok {
					t.Fatalf("session failed: %+v (misbehaviour %v)", res, rp.misbehaviour())
				}
				want := tier.mode
				if c.onlyA+c.onlyB == 0 {
					want = ModeEqual
				}
				if res.Mode != want {
					t.Fatalf("mode %s, want %s", res.Mode, want)
				}
				if tr.roundTrips < 1 || tr.recon[0] == 0 || tr.recon[1] == 0 {
					t.Fatalf("traffic %+v", tr)
				}
				if tier.o.CacheLen != 0 {
					return
				}
				// The derived sketches are the ones a fresh store builds.
				fa, fb := u.storeOf(a.pos), u.storeOf(b.pos)
				if res, _, ok := reconcile(t, newReconPair(t, ns, fa, fb, Options{}), fa, fb, func(bool) {}); !ok {
					t.Fatalf("session on fresh stores failed: %+v", res)
				}
				sameSketches(t, a, fa)
				sameSketches(t, b, fb)
			})
		}
	}
}

func sameSketches(t *testing.T, x, y *memStore) {
	t.Helper()
	xs, ys := x.sketches(), y.sketches()
	if len(xs) != 1 || len(ys) != 1 {
		t.Fatalf("%d and %d set indexes, want 1 each", len(xs), len(ys))
	}
	for name, ix := range xs {
		sx, sy := ix.(*sketch).enc, ys[name].(*sketch).enc
		a, err := sx.Symbols(0, uint64(sx.CacheLen()), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := sy.Symbols(0, uint64(sy.CacheLen()), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a, b) {
			t.Fatal("a derived sketch differs from one built from the ids")
		}
	}
}
