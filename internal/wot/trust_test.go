package wot

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

func dev(i int) core.DeviceID {
	var d core.DeviceID
	// The first byte scrambles the order so that device ids do not sort
	// like the indexes the tests think in.
	d[0] = byte(i*37 + 11)
	d[1] = byte(i)
	d[2] = byte(i >> 8)
	d[3] = byte(i >> 16)
	return d
}

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Level
		ok   bool
	}{
		{"none", LevelNone, true}, {"low", LevelLow, true}, {"Medium", LevelMedium, true},
		{"high", LevelHigh, true}, {"FULL", LevelFull, true}, {"", 0, false}, {"max", 0, false},
	} {
		got, err := ParseLevel(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseLevel(%q) = %v, %v", tc.in, got, err)
		}
		if !tc.ok && !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("ParseLevel(%q) error %v is not invalid argument", tc.in, err)
		}
		if tc.ok && got.String() != levelNames[got] {
			t.Errorf("String(%v)", got)
		}
	}
	if Level(9).Valid() {
		t.Error("level 9 valid")
	}
}

func TestTrustEdgeCodec(t *testing.T) {
	e := TrustEdge{From: dev(1), To: dev(2), Level: LevelHigh, Seq: 42}
	b := e.Encode()
	got, err := DecodeTrustEdge(b)
	if err != nil || got != e {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	n := Endorsement{Edge: e, Withdrawn: true}
	gotN, err := DecodeEndorsement(n.Encode())
	if err != nil || gotN != n {
		t.Fatalf("endorsement round trip: %+v, %v", gotN, err)
	}
	self := TrustEdge{From: dev(1), To: dev(1), Level: LevelLow}
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"trailing":       append(slices.Clone(b), 0),
		"truncated":      b[:len(b)-1],
		"version":        append([]byte{2}, b[1:]...),
		"level":          func() []byte { c := slices.Clone(b); c[65] = 5; return c }(),
		"self":           self.Encode(),
		"endorse flags":  append([]byte{1, 2}, b...),
		"endorse trail":  append(n.Encode(), 0),
		"endorse vers":   append([]byte{0, 0}, b...),
		"endorse inside": append([]byte{1, 0}, self.Encode()...),
	} {
		var err error
		if strings.HasPrefix(name, "endorse") {
			_, err = DecodeEndorsement(bad)
		} else {
			_, err = DecodeTrustEdge(bad)
		}
		if !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%s: decode error %v, want invalid argument", name, err)
		}
	}
}

func TestGraphLatestWins(t *testing.T) {
	a, b := dev(1), dev(2)
	type step struct {
		level   Level
		seq     uint64
		changed bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  Level
	}{
		{"newer replaces", []step{{LevelLow, 1, true}, {LevelFull, 2, true}}, LevelFull},
		{"older ignored", []step{{LevelFull, 5, true}, {LevelLow, 4, false}}, LevelFull},
		{"none overrides older trust", []step{{LevelHigh, 1, true}, {LevelNone, 2, true}, {LevelFull, 1, false}}, LevelNone},
		{"equal seq: lower level wins", []step{{LevelHigh, 3, true}, {LevelLow, 3, true}, {LevelHigh, 3, false}}, LevelLow},
		{"same statement twice", []step{{LevelMedium, 3, true}, {LevelMedium, 3, false}}, LevelMedium},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGraph()
			for i, s := range tc.steps {
				changed, err := g.Set(TrustEdge{From: a, To: b, Level: s.level, Seq: s.seq})
				if err != nil || changed != s.changed {
					t.Fatalf("step %d: changed %v, %v; want %v", i, changed, err, s.changed)
				}
			}
			if e, ok := g.Edge(a, b); !ok || e.Level != tc.want {
				t.Fatalf("edge %+v %v, want level %v", e, ok, tc.want)
			}
			l, _ := g.Compute(a, b, 0)
			if l != tc.want {
				t.Fatalf("compute %v, want %v", l, tc.want)
			}
			// Every permutation of the statements converges on the same edge.
			perm := slices.Clone(tc.steps)
			slices.Reverse(perm)
			g2 := NewGraph()
			for _, s := range perm {
				if _, err := g2.Set(TrustEdge{From: a, To: b, Level: s.level, Seq: s.seq}); err != nil {
					t.Fatal(err)
				}
			}
			e1, _ := g.Edge(a, b)
			e2, _ := g2.Edge(a, b)
			if e1 != e2 {
				t.Fatalf("order dependent: %+v vs %+v", e1, e2)
			}
		})
	}
}

func TestGraphSetRefusesBadEdges(t *testing.T) {
	g := NewGraph()
	for _, e := range []TrustEdge{
		{From: dev(1), To: dev(1), Level: LevelLow},
		{From: dev(1), To: dev(2), Level: 7},
	} {
		if _, err := g.Set(e); !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("Set(%+v) = %v", e, err)
		}
	}
	if d, n := g.Len(); d != 0 || n != 0 {
		t.Errorf("refused edges left %d devices %d edges", d, n)
	}
}

func TestCacheInvalidation(t *testing.T) {
	g := NewGraph()
	a, b, c := dev(1), dev(2), dev(3)
	mustSet(t, g, a, b, LevelFull, 1)
	mustSet(t, g, b, c, LevelHigh, 1)
	if l, p := g.Compute(a, c, 0); l != LevelMedium || len(p) != 3 {
		t.Fatalf("a->c = %v %v", l, p)
	}
	// Cached now; a change must be seen.
	mustSet(t, g, a, c, LevelLow, 1)
	if l, _ := g.Compute(a, c, 0); l != LevelMedium {
		t.Fatalf("after a->c low: %v", l)
	}
	mustSet(t, g, b, c, LevelLow, 2)
	if l, p := g.Compute(a, c, 0); l != LevelLow || len(p) != 2 {
		t.Fatalf("after b->c lowered: %v %v", l, p)
	}
	g.Remove(a, c)
	if l, p := g.Compute(a, c, 0); l != LevelNone || p != nil {
		t.Fatalf("after removal: %v %v", l, p)
	}
}

func mustSet(t testing.TB, g *Graph, a, b core.DeviceID, l Level, seq uint64) {
	t.Helper()
	if _, err := g.Set(TrustEdge{From: a, To: b, Level: l, Seq: seq}); err != nil {
		t.Fatal(err)
	}
}

// oracle enumerates every simple path of at most h hops.
func oracle(adj map[int]map[int]Level, devs []core.DeviceID, s, t, h int) (Level, []int) {
	best, bestPath := 0, []int(nil)
	better := func(score int, p []int) bool {
		switch {
		case score != best:
			return score > best
		case len(p) != len(bestPath):
			return len(p) < len(bestPath)
		}
		for i := range p {
			if c := bytes.Compare(devs[p[i]][:], devs[bestPath[i]][:]); c != 0 {
				return c < 0
			}
		}
		return false
	}
	var walk func(p []int, minL int)
	walk = func(p []int, minL int) {
		u := p[len(p)-1]
		if u == t {
			if score := minL - (len(p) - 2); score > 0 && better(score, p) {
				best, bestPath = score, slices.Clone(p)
			}
			return
		}
		if len(p)-1 == h {
			return
		}
		for v, l := range adj[u] {
			if slices.Contains(p, v) {
				continue
			}
			walk(append(p, v), min(minL, int(l)))
		}
	}
	walk([]int{s}, int(LevelFull))
	return Level(best), bestPath
}

func TestComputeMatchesOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	multiHop := 0
	for trial := range 600 {
		n := 2 + rng.IntN(9)
		m := rng.IntN(n * 4)
		devs := make([]core.DeviceID, n)
		for i := range devs {
			devs[i][0] = byte(rng.IntN(4)) // shared prefixes exercise the tie-break
			devs[i][1] = byte(i)           // distinct
		}
		adj := map[int]map[int]Level{}
		var edges []TrustEdge
		for range m {
			a, b := rng.IntN(n), rng.IntN(n)
			if a == b {
				continue
			}
			l := Level(rng.IntN(5))
			if adj[a] == nil {
				adj[a] = map[int]Level{}
			}
			adj[a][b] = l
			edges = append(edges, TrustEdge{From: devs[a], To: devs[b], Level: l, Seq: uint64(len(edges))})
		}
		// Insert in a shuffled order; Seq keeps the latest statement.
		g := NewGraph(WithCacheSize(rng.IntN(2) * 64))
		for _, i := range rng.Perm(len(edges)) {
			if _, err := g.Set(edges[i]); err != nil {
				t.Fatal(err)
			}
		}
		for range 10 {
			s, d := rng.IntN(n), rng.IntN(n)
			h := 1 + rng.IntN(5)
			if s == d {
				continue
			}
			want, wantPath := oracle(adj, devs, s, d, h)
			got, gotPath := g.Compute(devs[s], devs[d], h)
			if got != want || len(gotPath) != len(wantPath) {
				t.Fatalf("trial %d: %d->%d h=%d: got %v %v, oracle %v %v", trial, s, d, h, got, gotPath, want, wantPath)
			}
			for i, p := range wantPath {
				if gotPath[i] != devs[p] {
					t.Fatalf("trial %d: %d->%d h=%d: path %v, oracle %v", trial, s, d, h, gotPath, wantPath)
				}
			}
			if len(wantPath) > 2 {
				multiHop++
			}
		}
	}
	// The generator must exercise transitive answers, not only direct edges.
	if multiHop < 200 {
		t.Fatalf("only %d multi-hop answers", multiHop)
	}
}

func TestComputeTieBreakStable(t *testing.T) {
	// Four equal two-hop paths from 0 to 9 over 1..4, plus a three-hop path
	// of the same worth that must lose on hop count.
	edges := []TrustEdge{
		{From: dev(0), To: dev(1), Level: LevelHigh}, {From: dev(1), To: dev(9), Level: LevelHigh},
		{From: dev(0), To: dev(2), Level: LevelHigh}, {From: dev(2), To: dev(9), Level: LevelFull},
		{From: dev(0), To: dev(3), Level: LevelFull}, {From: dev(3), To: dev(9), Level: LevelHigh},
		{From: dev(0), To: dev(4), Level: LevelHigh}, {From: dev(4), To: dev(9), Level: LevelHigh},
		{From: dev(0), To: dev(5), Level: LevelFull}, {From: dev(5), To: dev(6), Level: LevelFull}, {From: dev(6), To: dev(9), Level: LevelFull},
	}
	mids := []core.DeviceID{dev(1), dev(2), dev(3), dev(4)}
	slices.SortFunc(mids, func(a, b core.DeviceID) int { return bytes.Compare(a[:], b[:]) })
	want := Path{dev(0), mids[0], dev(9)}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		g := NewGraph()
		for _, i := range rng.Perm(len(edges)) {
			if _, err := g.Set(edges[i]); err != nil {
				t.Fatal(err)
			}
		}
		l, p := g.Compute(dev(0), dev(9), 4)
		if l != LevelMedium || !slices.Equal(p, want) {
			t.Fatalf("got %v %v, want medium %v", l, p, want)
		}
	}
}

func TestComputeEdgeCases(t *testing.T) {
	g := NewGraph()
	a, b := dev(1), dev(2)
	if l, p := g.Compute(a, a, 0); l != LevelFull || !slices.Equal(p, Path{a}) {
		t.Errorf("self: %v %v", l, p)
	}
	if l, p := g.Compute(a, b, 0); l != LevelNone || p != nil {
		t.Errorf("unknown devices: %v %v", l, p)
	}
	// A chain of five Full edges: 5 hops are worth nothing, whatever maxHops.
	for i := range 5 {
		mustSet(t, g, dev(i), dev(i+1), LevelFull, 1)
	}
	for _, tc := range []struct {
		to, hops int
		want     Level
	}{
		{1, 1, LevelFull}, {2, 1, LevelNone}, {2, 2, LevelHigh}, {3, 0, LevelMedium},
		{4, 4, LevelLow}, {4, 3, LevelNone}, {5, 10, LevelNone}, {4, -1, LevelLow},
	} {
		if l, _ := g.Compute(dev(0), dev(tc.to), tc.hops); l != tc.want {
			t.Errorf("0->%d within %d: %v, want %v", tc.to, tc.hops, l, tc.want)
		}
	}
}

func TestAuthorize(t *testing.T) {
	g := NewGraph()
	mustSet(t, g, dev(0), dev(1), LevelFull, 1)
	mustSet(t, g, dev(1), dev(2), LevelHigh, 1)
	for _, tc := range []struct {
		name  string
		to    int
		min   Level
		allow bool
		level Level
	}{
		{"direct", 1, LevelFull, true, LevelFull},
		{"transitive enough", 2, LevelMedium, true, LevelMedium},
		{"transitive short", 2, LevelHigh, false, LevelMedium},
		{"no path", 3, LevelLow, false, LevelNone},
		{"none required", 3, LevelNone, true, LevelNone},
		{"bad level", 1, 6, false, LevelNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := g.Authorize(dev(0), dev(tc.to), tc.min, 0)
			if d.Allowed() != tc.allow {
				t.Fatalf("decision %+v", d)
			}
			switch d := d.(type) {
			case Allow:
				if d.Level != tc.level {
					t.Fatalf("allow level %v", d.Level)
				}
			case Deny:
				if d.Computed != tc.level || d.Reason == "" || !errors.Is(d.Err(), core.ErrPermissionDenied) {
					t.Fatalf("deny %+v", d)
				}
			}
		})
	}
}

// Queries and updates from many goroutines (run under -race): every answer
// must be one the graph could give at some generation, here simply a level
// the edges allow.
func TestGraphConcurrent(t *testing.T) {
	g := NewGraph(WithCacheSize(16))
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 500 {
				a, b := dev(rng.IntN(20)), dev(rng.IntN(20))
				if w%2 == 0 && a != b {
					if _, err := g.Set(TrustEdge{From: a, To: b, Level: Level(rng.IntN(5)), Seq: uint64(i)}); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				if l, p := g.Compute(a, b, 0); l != LevelNone && (len(p) < 1 || p[0] != a || p[len(p)-1] != b) {
					t.Errorf("path %v for %v", p, l)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
