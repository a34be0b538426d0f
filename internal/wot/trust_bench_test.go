package wot

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

const (
	benchDevices = 100_000
	benchEdges   = 1_000_000
	benchQueries = 2_000
)

type benchGraph struct {
	g            *Graph
	devs         []core.DeviceID
	bytesPerEdge float64
	random       [][2]core.DeviceID // uniformly random pairs: mostly no trust
	walked       [][2]core.DeviceID // target at the end of a 1-4 hop walk
}

var (
	benchUniform = sync.OnceValue(func() *benchGraph { return buildBenchGraph(false) })
	benchSkewed  = sync.OnceValue(func() *benchGraph { return buildBenchGraph(true) })
)

// buildBenchGraph draws edges with uniform sources and uniform or Zipf
// (s = 1.1) targets: the skewed graph has hubs trusted by tens of thousands.
func buildBenchGraph(skewed bool) *benchGraph {
	rng := rand.New(rand.NewPCG(7, 7))
	zipf := rand.NewZipf(rng, 1.1, 1, benchDevices-1)
	hubs := rng.Perm(benchDevices) // which devices the popular ranks are
	bg := &benchGraph{devs: make([]core.DeviceID, benchDevices)}
	for i := range bg.devs {
		for j := 0; j < len(core.DeviceID{}); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				bg.devs[i][j+k] = byte(v >> (8 * k))
			}
		}
	}
	type e struct {
		a, b int
		l    Level
	}
	edges := make([]e, 0, benchEdges)
	adj := make([][]int, benchDevices)
	for len(edges) < benchEdges {
		a, b := rng.IntN(benchDevices), rng.IntN(benchDevices)
		if skewed {
			b = hubs[zipf.Uint64()]
		}
		if a == b {
			continue
		}
		edges = append(edges, e{a, b, LevelLow + Level(rng.IntN(4))})
		adj[a] = append(adj[a], b)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g := NewGraph()
	for i, x := range edges {
		if _, err := g.Set(TrustEdge{From: bg.devs[x.a], To: bg.devs[x.b], Level: x.l, Seq: uint64(i)}); err != nil {
			panic(err)
		}
	}
	g.Compact()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(edges) // else its release would be subtracted from the index
	_, n := g.Len()
	bg.g = g
	bg.bytesPerEdge = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	for range benchQueries {
		s := rng.IntN(benchDevices)
		bg.random = append(bg.random, [2]core.DeviceID{bg.devs[s], bg.devs[rng.IntN(benchDevices)]})
		t := s
		for range 1 + rng.IntN(4) {
			if len(adj[t]) > 0 {
				t = adj[t][rng.IntN(len(adj[t]))]
			}
		}
		bg.walked = append(bg.walked, [2]core.DeviceID{bg.devs[s], bg.devs[t]})
	}
	return bg
}

// BenchmarkTrustCompute: 100k devices, 1M random edges (levels Low..Full
// uniform; targets uniform or Zipf-skewed), max_hops 4; query pairs either
// uniformly random (almost never trusted: the search exhausts its bound) or
// a device and the end of a 1-4 hop walk from it. Reports p50/p99 per query, cold (cache reset before
// every query) and warm (every pair computed once before timing), and the
// index's heap per edge.
func BenchmarkTrustCompute(b *testing.B) {
	for _, gr := range []struct {
		name  string
		build func() *benchGraph
	}{{"uniform", benchUniform}, {"skewed", benchSkewed}} {
		b.Run(gr.name, func(b *testing.B) { benchCompute(b, gr.build()) })
	}
}

func benchCompute(b *testing.B, bg *benchGraph) {
	for _, set := range []struct {
		name  string
		pairs [][2]core.DeviceID
	}{{"random", bg.random}, {"walked", bg.walked}} {
		for _, warm := range []bool{false, true} {
			name := set.name + "/cold"
			if warm {
				name = set.name + "/warm"
			}
			b.Run(name, func(b *testing.B) {
				g := bg.g
				g.ResetCache()
				if warm {
					for _, p := range set.pairs {
						g.Compute(p[0], p[1], 4)
					}
				}
				lat := make([]time.Duration, 0, b.N)
				trusted := 0
				i := 0
				for b.Loop() {
					p := set.pairs[i%len(set.pairs)]
					i++
					if !warm {
						g.ResetCache()
					}
					t0 := time.Now()
					l, _ := g.Compute(p[0], p[1], 4)
					lat = append(lat, time.Since(t0))
					if l > LevelNone {
						trusted++
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
				b.ReportMetric(float64(trusted)/float64(len(lat)), "trusted-frac")
				b.ReportMetric(bg.bytesPerEdge, "index-B/edge")
			})
		}
	}
}
