package journal

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// The figures of issue #10 item 2:
//
//	go test -run '^$' -bench 'RangeSummary1M|RangeAggregateMemory1M|RangeRebuild1M' -benchtime 2s ./internal/journal/
//
// The aggregate is built from synthetic keys (one fact per lamport, random
// ids), through the same builder and insert code the journal uses; summaries
// go through Journal.RangeSummary and RangeSplit, locks included.

const benchFacts = 1_000_000

func benchKey(r *rand.ChaCha8, lamport uint64) FactKey {
	k := FactKey{Lamport: lamport}
	r.Read(k.ID[:])
	return k
}

// heapDelta runs build and returns what it left allocated on the heap.
func heapDelta(build func() *aggTree) (*aggTree, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return t, after.HeapAlloc - before.HeapAlloc
}

func bulkTree(tb testing.TB, n int) *aggTree {
	r := rand.NewChaCha8([32]byte{1})
	b := newTreeBuilder(defaultLeafCap, defaultInnerCap)
	for i := range n {
		if err := b.add(benchKey(r, uint64(i+1))); err != nil {
			tb.Fatal(err)
		}
	}
	return b.finish()
}

// benchJournal is a journal whose only state is ns's aggregate, for the
// read paths that never touch the file once it is built.
func benchJournal(ns core.Namespace, t *aggTree) *Journal {
	j := &Journal{ranges: newRangeIndex()}
	r := &nsRanges{ready: make(chan struct{}), built: true, tree: t}
	close(r.ready)
	j.ranges.ns[ns] = r
	return j
}

func BenchmarkRangeSummary1M(b *testing.B) {
	t, heap := heapDelta(func() *aggTree { return bulkTree(b, benchFacts) })
	ns := core.ContextNamespace(core.ContextID{1})
	j := benchJournal(ns, t)
	r := rand.NewChaCha8([32]byte{2})
	rnd := rand.New(r)
	const nb = 1 << 12
	var bounds [nb][2]FactKey
	for i := range bounds {
		lo := benchKey(r, rnd.Uint64N(benchFacts)+1)
		hi := benchKey(r, rnd.Uint64N(benchFacts)+1)
		if hi.Less(lo) {
			lo, hi = hi, lo
		}
		bounds[i] = [2]FactKey{lo, hi}
	}
	ctx := context.Background()
	b.Run("summary", func(b *testing.B) {
		i := 0
		for b.Loop() {
			bd := &bounds[i%nb]
			if _, _, err := j.RangeSummary(ctx, ns, bd[0], bd[1]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(t.memBytes())/benchFacts, "B/fact(struct)")
		b.ReportMetric(float64(heap)/benchFacts, "B/fact(heap)")
	})
	b.Run("split16", func(b *testing.B) {
		i := 0
		for b.Loop() {
			bd := &bounds[i%nb]
			if _, err := j.RangeSplit(ctx, ns, bd[0], bd[1], 16); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	runtime.KeepAlive(t)
}

// BenchmarkRangeAggregateMemory1M is the worst case for memory: keys inserted
// one by one in random order (a sync catching up out of order), leaving
// leaves part full after splits. An op is a million inserts.
func BenchmarkRangeAggregateMemory1M(b *testing.B) {
	r := rand.NewChaCha8([32]byte{3})
	rnd := rand.New(r)
	keys := make([]FactKey, benchFacts)
	for i := range keys {
		keys[i] = benchKey(r, rnd.Uint64N(benchFacts)+1)
	}
	var heap uint64
	var t *aggTree
	for b.Loop() {
		t, heap = heapDelta(func() *aggTree {
			t := newAggTree(defaultLeafCap, defaultInnerCap)
			for _, k := range keys {
				t.insert(k)
			}
			return t
		})
	}
	b.ReportMetric(float64(t.memBytes())/benchFacts, "B/fact(struct)")
	b.ReportMetric(float64(heap)/benchFacts, "B/fact(heap)")
}

// BenchmarkRangeRebuild1M times the first-use build of a 1M-fact namespace
// from a bbolt file laid out as the journal's (namespaces/<ns>, facts/<ns>
// with 350-byte values, about a fact with a 200-byte payload), page cache
// warm. Writing the file takes a while and about 400 MB of temp space.
func BenchmarkRangeRebuild1M(b *testing.B) {
	ns := core.ContextNamespace(core.ContextID{1})
	db, err := bolt.Open(filepath.Join(b.TempDir(), "journal.db"), 0o600, &bolt.Options{NoSync: true, InitialMmapSize: initialMmapSize})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := rand.NewChaCha8([32]byte{4})
	val := make([]byte, 350)
	const perTx = 100_000
	for start := 0; start < benchFacts; start += perTx {
		err := db.Update(func(tx *bolt.Tx) error {
			nsb, err := tx.CreateBucketIfNotExists(bucketNamespaces)
			if err != nil {
				return err
			}
			if err := nsb.Put(nsKey(ns), []byte{1}); err != nil {
				return err
			}
			fb, err := tx.CreateBucketIfNotExists(bucketFacts)
			if err != nil {
				return err
			}
			b, err := fb.CreateBucketIfNotExists(nsKey(ns))
			if err != nil {
				return err
			}
			b.FillPercent = 1.0
			for i := start; i < start+perTx; i++ {
				r.Read(val)
				if err := b.Put(factKey(benchKey(r, uint64(i+1))), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		tb := newTreeBuilder(defaultLeafCap, defaultInnerCap)
		if err := db.View(func(tx *bolt.Tx) error { return loadRanges(tx, ns, tb) }); err != nil {
			b.Fatal(err)
		}
		if t := tb.finish(); t.count() != benchFacts {
			b.Fatalf("built %d keys", t.count())
		}
	}
}
