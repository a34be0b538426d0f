package wot

import (
	"bytes"
	"strings"

	"github.com/aura-p2p/aura/internal/core"
)

// DefaultMaxHops is the path length bound when a query names none.
const DefaultMaxHops = 4

// usefulHops is the longest path that can carry any trust: k hops cost k-1
// levels, so even an all-Full path of 5 hops is worth Full-4 = None. Asking
// for more hops than this gives the same answers, so queries are clamped.
const usefulHops = int(LevelFull)

// Path is the evidence of a trust answer: the devices from the viewer to the
// target, both included. It is empty when there is no trust at all.
type Path []core.DeviceID

// Hops is the number of edges on the path.
func (p Path) Hops() int { return max(len(p)-1, 0) }

func (p Path) String() string {
	parts := make([]string, len(p))
	for i, d := range p {
		parts[i] = d.String()
	}
	return strings.Join(parts, " -> ")
}

// Compute returns the transitive trust of from in to over at most maxHops
// edges (maxHops <= 0 means DefaultMaxHops) and the evidence path.
//
// The trust of a path of k edges whose weakest edge is m is m-(k-1), floored
// at None; the answer is the best over simple paths. Among the paths that
// reach the best level the evidence is the one with the fewest hops, then the
// lexicographically smallest sequence of device ids, so it does not depend on
// the order edges were inserted in. A device trusts itself fully.
//
// Why the search is exact. Write G_T for the graph of edges of level >= T and
// d_T for the hop distance from `from` to `to` in G_T. Then
//
//	trust = max over T in Low..Full with d_T <= maxHops of T-(d_T-1).
//
// (>=) a shortest path of G_T has d_T edges all >= T, so it is worth at least
// T-(d_T-1). (<=) a path of k edges with weakest edge m lies in G_m, so
// d_m <= k and the term for T=m, m-(d_m-1), is at least its worth m-(k-1).
// A shortest path is simple, so maximising over walks or over simple paths
// gives the same value. The same argument fixes the evidence: a best path of
// k hops has weakest edge exactly T* = best+k-1, so the best paths with the
// fewest hops are exactly the shortest paths of G_T* for the smallest T* that
// attains the best; all of them are simple (every step lowers the distance
// to the target by one), and the lexicographically smallest is found greedily
// with the exact distances to the target.
//
// So a query is at most four hop-bounded breadth-first searches (one per
// threshold, each bidirectional), pruned by the best level found so far: at
// threshold T only distances d with T-(d-1) >= best are worth looking for,
// and because lower thresholds are tried later, a later equal answer always
// has fewer hops. No search enumerates paths; each is linear in the edges it
// touches, and integers only.
func (g *Graph) Compute(from, to core.DeviceID, maxHops int) (Level, Path) {
	if from == to {
		return LevelFull, Path{from}
	}
	h := clampHops(maxHops)
	g.mu.RLock()
	defer g.mu.RUnlock()
	s, ok1 := g.ids[from]
	t, ok2 := g.ids[to]
	if !ok1 || !ok2 {
		return LevelNone, nil
	}
	key := queryKey{to: t, hops: uint8(h)}
	r, ok := g.cache.get(s, key, g.gen)
	if !ok {
		r = g.compute(s, t, h)
		g.cache.put(s, key, g.gen, r)
	}
	if r.level == LevelNone {
		return LevelNone, nil
	}
	p := make(Path, len(r.path))
	for i, idx := range r.path {
		p[i] = g.devs[idx]
	}
	return r.level, p
}

func clampHops(h int) int {
	if h <= 0 {
		h = DefaultMaxHops
	}
	return min(h, usefulHops)
}

// compute runs under the read lock.
func (g *Graph) compute(s, t uint32, h int) queryResult {
	sc := g.getScratch()
	defer g.scratch.Put(sc)
	best, bestT, bestD := 0, 0, 0
	for T := int(LevelFull); T >= int(LevelLow); T-- {
		limit := min(h, T-max(best, 1)+1)
		if limit < 1 {
			continue
		}
		if d := g.search(sc, s, t, Level(T), limit, false); d > 0 {
			best, bestT, bestD = T-d+1, T, d
		}
	}
	if best == 0 {
		return queryResult{level: LevelNone}
	}
	return queryResult{level: Level(best), path: g.smallestPath(sc, s, t, Level(bestT), bestD)}
}

// searchScratch holds per-query marks, reused through a pool so that a
// query allocates nothing proportional to the graph. A mark is valid when
// its stamp equals the current one, so clearing is a counter increment.
type searchScratch struct {
	stamp            uint32
	fwdMark, bwdMark []uint32
	goodMark         []uint32
	fwdDist, bwdDist []uint8
	// Visited nodes in BFS order; layer i of a side is
	// list[start[i]:start[i+1]].
	fwdList, bwdList   []uint32
	fwdStart, bwdStart []int
	df, db             int // complete layers of each side after search
}

func (g *Graph) getScratch() *searchScratch {
	sc, _ := g.scratch.Get().(*searchScratch)
	if sc == nil {
		sc = &searchScratch{}
	}
	if n := len(g.devs); len(sc.fwdMark) < n {
		n += n / 4
		sc.fwdMark, sc.bwdMark, sc.goodMark = make([]uint32, n), make([]uint32, n), make([]uint32, n)
		sc.fwdDist, sc.bwdDist = make([]uint8, n), make([]uint8, n)
		sc.stamp = 0
	}
	return sc
}

func (sc *searchScratch) newStamp() uint32 {
	sc.stamp++
	if sc.stamp == 0 {
		clear(sc.fwdMark)
		clear(sc.bwdMark)
		clear(sc.goodMark)
		sc.stamp = 1
	}
	return sc.stamp
}

// search returns the hop distance from s to t (s != t) over edges of level
// >= T if it is at most limit, else 0. It grows whole layers from both ends,
// each time the side whose next layer scans fewer edges, so a hub trusted by
// half the graph is never expanded when its other end is cheap.
//
// Stopping rule: before a layer is grown, the explored balls (radii df and
// db) are disjoint, so the distance exceeds df+db; the first layer that meets
// the other side therefore realises exactly df+db+1, and every meeting node
// of that layer lies on a shortest path. With complete set, search finishes
// the meeting layer, so that afterwards sc holds complete layers 0..sc.df
// from s and 0..sc.db to t with sc.df+sc.db the distance: what smallestPath
// needs.
func (g *Graph) search(sc *searchScratch, s, t uint32, T Level, limit int, complete bool) int {
	st := sc.newStamp()
	sc.fwdMark[s], sc.fwdDist[s] = st, 0
	sc.bwdMark[t], sc.bwdDist[t] = st, 0
	sc.fwdList = append(sc.fwdList[:0], s)
	sc.bwdList = append(sc.bwdList[:0], t)
	sc.fwdStart = append(sc.fwdStart[:0], 0, 1)
	sc.bwdStart = append(sc.bwdStart[:0], 0, 1)
	costF, costB := len(g.nodes[s].out), len(g.nodes[t].in)
	df, db := 0, 0
	for df+db < limit {
		fwd := costF <= costB
		var layer []uint32
		if fwd {
			layer = sc.fwdList[sc.fwdStart[df]:sc.fwdStart[df+1]]
		} else {
			layer = sc.bwdList[sc.bwdStart[db]:sc.bwdStart[db+1]]
		}
		cost, met := 0, false
		for _, u := range layer {
			adj := g.nodes[u].in
			if fwd {
				adj = g.nodes[u].out
			}
			for _, e := range adj {
				v, l := unpack(e)
				if l < T {
					continue
				}
				if fwd {
					if sc.fwdMark[v] == st {
						continue
					}
					sc.fwdMark[v], sc.fwdDist[v] = st, uint8(df+1)
					sc.fwdList = append(sc.fwdList, v)
					cost += len(g.nodes[v].out)
					met = met || sc.bwdMark[v] == st
				} else {
					if sc.bwdMark[v] == st {
						continue
					}
					sc.bwdMark[v], sc.bwdDist[v] = st, uint8(db+1)
					sc.bwdList = append(sc.bwdList, v)
					cost += len(g.nodes[v].in)
					met = met || sc.fwdMark[v] == st
				}
				if met && !complete {
					return df + db + 1
				}
			}
		}
		var empty bool
		if fwd {
			df++
			sc.fwdStart = append(sc.fwdStart, len(sc.fwdList))
			empty, costF = sc.fwdStart[df] == sc.fwdStart[df+1], cost
		} else {
			db++
			sc.bwdStart = append(sc.bwdStart, len(sc.bwdList))
			empty, costB = sc.bwdStart[db] == sc.bwdStart[db+1], cost
		}
		if met {
			sc.df, sc.db = df, db
			return df + db
		}
		if empty {
			return 0
		}
	}
	return 0
}

// smallestPath returns the lexicographically smallest (by device id) path of
// exactly k hops from s to t over edges >= T, where k is their distance.
//
// After a complete search, a node at position i <= df of a shortest path is
// in forward layer i, and one at position i >= df is in backward layer k-i.
// The nodes of forward layer df marked from t are the meeting set; walking
// the forward layers down from it marks "good" the nodes that lead to it. The
// greedy walk from s then takes, at each step, the smallest neighbour that is
// good (first part) or one hop closer to t (second part).
func (g *Graph) smallestPath(sc *searchScratch, s, t uint32, T Level, k int) []uint32 {
	if g.search(sc, s, t, T, k, true) != k {
		// Unreachable: compute found this distance over the same edges under
		// the same read lock.
		panic("wot: trust path reconstruction lost its path")
	}
	st, df := sc.stamp, sc.df
	for _, v := range sc.fwdList[sc.fwdStart[df]:sc.fwdStart[df+1]] {
		if sc.bwdMark[v] == st {
			sc.goodMark[v] = st
		}
	}
	for i := df - 1; i >= 1; i-- {
		for _, v := range sc.fwdList[sc.fwdStart[i]:sc.fwdStart[i+1]] {
			for _, e := range g.nodes[v].out {
				if w, l := unpack(e); l >= T && sc.goodMark[w] == st && sc.fwdMark[w] == st && int(sc.fwdDist[w]) == i+1 {
					sc.goodMark[v] = st
					break
				}
			}
		}
	}
	path := make([]uint32, 1, k+1)
	path[0] = s
	cur := s
	for i := 1; i <= k; i++ {
		var pick uint32
		found := false
		for _, e := range g.nodes[cur].out {
			w, l := unpack(e)
			if l < T {
				continue
			}
			var ok bool
			if i <= df {
				ok = sc.goodMark[w] == st && sc.fwdMark[w] == st && int(sc.fwdDist[w]) == i
			} else {
				ok = sc.bwdMark[w] == st && int(sc.bwdDist[w]) == k-i
			}
			if ok && (!found || bytes.Compare(g.devs[w][:], g.devs[pick][:]) < 0) {
				pick, found = w, true
			}
		}
		if !found {
			panic("wot: trust path reconstruction lost its path")
		}
		path = append(path, pick)
		cur = pick
	}
	return path
}
