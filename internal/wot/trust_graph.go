package wot

import (
	"fmt"
	"slices"
	"sync"

	"github.com/aura-p2p/aura/internal/core"
)

// Graph indexes the trust edges one device can see and answers transitive
// trust queries over them. Which edges are visible (own edges, endorsements
// of contacts, withdrawals) is the node's reduction; the Graph holds one edge
// per (from, to), the latest by TrustEdge.Newer.
//
// Memory: device ids are interned to uint32 indexes; each device keeps its
// out-edges sorted by target, each entry packing target<<3|level into a
// uint32 beside the edge's 8-byte Seq, and its in-edges likewise without Seq:
// 16 bytes per edge plus about 180 bytes per device (slice headers, the
// intern map, spare capacity): 35 B/edge measured at 10 edges per device.
// Interned ids are never freed: a device that lost all its edges keeps its
// slot, and gets it back if it gains edges again.
//
// A Graph is safe for concurrent use. Queries share a read lock; any change
// bumps a generation that invalidates every cached query result.
type Graph struct {
	mu    sync.RWMutex
	ids   map[core.DeviceID]uint32
	devs  []core.DeviceID
	nodes []node
	edges int
	gen   uint64

	cache   queryCache
	scratch sync.Pool // *searchScratch
}

type node struct {
	out    []uint32 // sorted; target<<3 | level
	outSeq []uint64 // parallel to out
	in     []uint32 // sorted; source<<3 | level
}

const (
	levelBits = 3
	levelMask = 1<<levelBits - 1
	// maxNodes keeps an index shifted by levelBits inside a uint32.
	maxNodes = 1 << (32 - levelBits)
)

func pack(idx uint32, l Level) uint32 { return idx<<levelBits | uint32(l) }
func unpack(e uint32) (uint32, Level) { return e >> levelBits, Level(e & levelMask) }

// findEdge returns the position of the entry for idx in a sorted packed list.
func findEdge(list []uint32, idx uint32) (int, bool) {
	return slices.BinarySearchFunc(list, idx, func(e, target uint32) int {
		switch i := e >> levelBits; {
		case i < target:
			return -1
		case i > target:
			return 1
		}
		return 0
	})
}

// GraphOption configures a Graph.
type GraphOption func(*Graph)

// WithCacheSize bounds the number of cached query results (default 65,536; 0
// disables the cache).
func WithCacheSize(n int) GraphOption {
	return func(g *Graph) { g.cache.max = max(n, 0) }
}

// NewGraph returns an empty graph.
func NewGraph(opts ...GraphOption) *Graph {
	g := &Graph{ids: make(map[core.DeviceID]uint32)}
	g.cache.max = 1 << 16
	for _, o := range opts {
		o(g)
	}
	return g
}

func (g *Graph) intern(d core.DeviceID) (uint32, error) {
	if i, ok := g.ids[d]; ok {
		return i, nil
	}
	if len(g.devs) >= maxNodes {
		return 0, fmt.Errorf("trust graph holds %d devices already: %w", len(g.devs), core.ErrResourceExhausted)
	}
	i := uint32(len(g.devs))
	g.ids[d] = i
	g.devs = append(g.devs, d)
	g.nodes = append(g.nodes, node{})
	return i, nil
}

// Set records that from trusts to at level, unless the graph already holds
// an edge for (from, to) that is newer (TrustEdge.Newer). It reports whether
// the graph changed. A None edge is kept (it overrides older trust) but never
// carries trust.
func (g *Graph) Set(e TrustEdge) (bool, error) {
	if err := e.Validate(); err != nil {
		return false, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	f, err := g.intern(e.From)
	if err != nil {
		return false, err
	}
	t, err := g.intern(e.To)
	if err != nil {
		return false, err
	}
	fn, tn := &g.nodes[f], &g.nodes[t]
	pos, found := findEdge(fn.out, t)
	if found {
		_, old := unpack(fn.out[pos])
		if !edgeNewer(e.Seq, e.Level, fn.outSeq[pos], old) {
			return false, nil
		}
		fn.outSeq[pos] = e.Seq
		if old == e.Level {
			// Same level, newer Seq: queries cannot change.
			return true, nil
		}
		fn.out[pos] = pack(t, e.Level)
		ip, _ := findEdge(tn.in, f)
		tn.in[ip] = pack(f, e.Level)
	} else {
		fn.out = slices.Insert(fn.out, pos, pack(t, e.Level))
		fn.outSeq = slices.Insert(fn.outSeq, pos, e.Seq)
		ip, _ := findEdge(tn.in, f)
		tn.in = slices.Insert(tn.in, ip, pack(f, e.Level))
		g.edges++
	}
	g.gen++
	return true, nil
}

// Remove drops the edge (from, to), whatever its Seq: the node calls it when
// the edge stops being visible (an endorsement withdrawn, a context left). It
// reports whether there was an edge.
func (g *Graph) Remove(from, to core.DeviceID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok1 := g.ids[from]
	t, ok2 := g.ids[to]
	if !ok1 || !ok2 {
		return false
	}
	fn, tn := &g.nodes[f], &g.nodes[t]
	pos, found := findEdge(fn.out, t)
	if !found {
		return false
	}
	fn.out = slices.Delete(fn.out, pos, pos+1)
	fn.outSeq = slices.Delete(fn.outSeq, pos, pos+1)
	ip, _ := findEdge(tn.in, f)
	tn.in = slices.Delete(tn.in, ip, ip+1)
	g.edges--
	g.gen++
	return true
}

// Edge returns the edge (from, to) the graph holds.
func (g *Graph) Edge(from, to core.DeviceID) (TrustEdge, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	f, ok1 := g.ids[from]
	t, ok2 := g.ids[to]
	if !ok1 || !ok2 {
		return TrustEdge{}, false
	}
	pos, found := findEdge(g.nodes[f].out, t)
	if !found {
		return TrustEdge{}, false
	}
	_, l := unpack(g.nodes[f].out[pos])
	return TrustEdge{From: from, To: to, Level: l, Seq: g.nodes[f].outSeq[pos]}, true
}

// Len returns the number of devices interned and of edges held.
func (g *Graph) Len() (devices, edges int) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.devs), g.edges
}

// Generation changes whenever the graph does; cached answers carry it.
func (g *Graph) Generation() uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.gen
}

// ResetCache drops every cached query result (the next queries run cold).
func (g *Graph) ResetCache() { g.cache.reset() }

// queryCache holds query results per viewer. An entry is valid only for the
// generation it was computed at; it is bounded by dropping everything when
// full, which keeps it O(1) and the answers are recomputed deterministically.
type queryCache struct {
	mu      sync.Mutex
	max     int
	n       int
	viewers map[uint32]*viewerCache
}

type viewerCache struct {
	gen uint64
	res map[queryKey]queryResult
}

type queryKey struct {
	to   uint32
	hops uint8
}

type queryResult struct {
	level Level
	path  []uint32
}

func (c *queryCache) get(from uint32, k queryKey, gen uint64) (queryResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.viewers[from]
	if v == nil || v.gen != gen {
		return queryResult{}, false
	}
	r, ok := v.res[k]
	return r, ok
}

func (c *queryCache) put(from uint32, k queryKey, gen uint64, r queryResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max == 0 {
		return
	}
	if c.n >= c.max || c.viewers == nil {
		c.viewers = make(map[uint32]*viewerCache)
		c.n = 0
	}
	v := c.viewers[from]
	switch {
	case v == nil:
		v = &viewerCache{gen: gen, res: make(map[queryKey]queryResult)}
		c.viewers[from] = v
	case v.gen != gen:
		if gen < v.gen {
			return // computed on an older graph than what is cached
		}
		c.n -= len(v.res)
		v.gen, v.res = gen, make(map[queryKey]queryResult)
	}
	if _, dup := v.res[k]; !dup {
		c.n++
	}
	v.res[k] = r
}

func (c *queryCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.viewers, c.n = nil, 0
}

// Compact releases the spare capacity that incremental inserts leave in the
// adjacency lists (about an eighth of the index after a bulk load). The node
// calls it after loading the visible edges at start; later inserts grow the
// touched lists again.
func (g *Graph) Compact() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.nodes {
		n := &g.nodes[i]
		n.out, n.outSeq, n.in = clip(n.out), clip(n.outSeq), clip(n.in)
	}
}

func clip[T any](s []T) []T {
	if cap(s) == len(s) {
		return s
	}
	if len(s) == 0 {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}
