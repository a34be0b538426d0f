package sync

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/transport"
)

func sameIDs(t testing.TB, p *pair) {
	t.Helper()
	a, b := p.ids(t, p.a), p.ids(t, p.b)
	if !slices.Equal(a, b) {
		t.Fatalf("sets differ after sync: a has %d, b has %d", len(a), len(b))
	}
}

// syncOnce runs one session from a to b and checks it converged.
func syncOnce(t testing.TB, p *pair) Progress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := p.a.s.SyncNow(ctx, p.b.signer.DeviceID(), core.Namespace{}, nil)
	if err != nil {
		t.Fatalf("sync: %v (%+v)", err, res)
	}
	if len(res) != 1 {
		t.Fatalf("%d sessions, want 1", len(res))
	}
	// The responder may still be finishing its side: wait for its session.
	waitIdle(t, p.b.s)
	sameIDs(t, p)
	return res[0]
}

func waitIdle(t testing.TB, s *Syncer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.sessions)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still running", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSessionModes(t *testing.T) {
	cases := []struct {
		name                 string
		shared, onlyA, onlyB int
		o                    Options
		mode                 Mode
	}{
		{"equal", 40, 0, 0, Options{}, ModeEqual},
		{"empty namespaces apart from genesis", 0, 0, 0, Options{}, ModeEqual},
		{"one fact missing at b", 40, 1, 0, Options{}, ModeSketch},
		{"one fact missing at a", 40, 0, 1, Options{}, ModeSketch},
		{"both sides miss some", 100, 25, 30, Options{}, ModeSketch},
		{"past the cache", 60, 70, 50, Options{CacheLen: 16}, ModeSketch},
		{"sketch exhausted: ranges", 100, 90, 80, Options{MaxSketch: 64}, ModeRange},
		{"large ranges with small lists", 600, 300, 5, Options{MaxSketch: 32}, ModeRange},
		{"ranges, one side much larger", 30, 500, 0, Options{MaxSketch: 32}, ModeRange},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, tc.o)
			var shared, a, b []*journal.SignedFact
			for range tc.shared {
				shared = append(shared, p.fact(t, p.rng.IntN(2) == 0))
			}
			for range tc.onlyA {
				a = append(a, p.fact(t, true))
			}
			for range tc.onlyB {
				b = append(b, p.fact(t, false))
			}
			add(t, shared, p.a, p.b)
			add(t, a, p.a)
			add(t, b, p.b)
			res := syncOnce(t, p)
			if res.Mode != tc.mode {
				t.Fatalf("mode %s, want %s", res.Mode, tc.mode)
			}
			if res.Phase != PhaseDone || res.Err != "" {
				t.Fatalf("session ended %s (%s)", res.Phase, res.Err)
			}
			if res.FactsIn != uint64(tc.onlyB) {
				t.Fatalf("a took in %d facts, want %d", res.FactsIn, tc.onlyB)
			}
			if res.FactsOut != uint64(tc.onlyA) {
				t.Fatalf("a sent %d facts, want %d", res.FactsOut, tc.onlyA)
			}
			// A second session finds nothing to do.
			if again := syncOnce(t, p); again.Mode != ModeEqual {
				t.Fatalf("second session: mode %s, want equal", again.Mode)
			}
		})
	}
}

func TestFreshDeviceGetsEverything(t *testing.T) {
	p := newPair(t, Options{})
	var facts []*journal.SignedFact
	for range 700 {
		facts = append(facts, p.fact(t, true))
	}
	add(t, facts, p.a)
	// b initiates: it has only the genesis, so a sends all in order.
	ctx := context.Background()
	res, err := p.b.s.SyncNow(ctx, p.a.signer.DeviceID(), core.Namespace{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitIdle(t, p.a.s)
	sameIDs(t, p)
	if res[0].FactsIn != 700 {
		t.Fatalf("b took in %d, want 700", res[0].FactsIn)
	}
}

// A push keeps several batches in flight while their charges become
// durable (the memnet's Send, like the transport's, returns only then), and
// every fact still arrives once.
func TestPushPipelines(t *testing.T) {
	p := newPair(t, Options{})
	var facts []*journal.SignedFact
	for range 1500 {
		facts = append(facts, p.fact(t, true))
	}
	add(t, facts, p.a)
	p.h.mu.Lock()
	p.h.chargeDelay = 50 * time.Millisecond
	p.h.mu.Unlock()
	res, err := p.b.s.SyncNow(context.Background(), p.a.signer.DeviceID(), core.Namespace{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitIdle(t, p.a.s)
	sameIDs(t, p)
	if res[0].FactsIn != 1500 {
		t.Fatalf("b took in %d, want 1500", res[0].FactsIn)
	}
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	if batches := p.h.msgs[TypeBatch]; batches < 4 || p.h.maxInFlight < 2 {
		t.Fatalf("%d batches, at most %d sends in flight at once", batches, p.h.maxInFlight)
	}
}

// TestReconcileProperty checks both tiers against the brute-force set
// difference for random sets.
func TestReconcileProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		o := Options{}
		if rapid.Bool().Draw(rt, "ranges") {
			o.MaxSketch = 8
		}
		o.CacheLen = rapid.SampledFrom([]int{4, 64, 4096}).Draw(rt, "cache")
		p := newPair(t, o)
		n := rapid.IntRange(0, 80).Draw(rt, "shared")
		da := rapid.IntRange(0, 40).Draw(rt, "onlyA")
		db := rapid.IntRange(0, 40).Draw(rt, "onlyB")
		var shared, a, b []*journal.SignedFact
		for range n {
			shared = append(shared, p.fact(t, rapid.Bool().Draw(rt, "author")))
		}
		for range da {
			a = append(a, p.fact(t, true))
		}
		for range db {
			b = append(b, p.fact(t, false))
		}
		add(t, shared, p.a, p.b)
		add(t, a, p.a)
		add(t, b, p.b)
		want := p.ids(t, p.a)
		for _, f := range b {
			want = append(want, f.ID)
		}
		res := syncOnce(t, p)
		got := p.ids(t, p.a)
		slices.SortFunc(want, func(x, y core.FactID) int { return slices.Compare(x[:], y[:]) })
		slices.SortFunc(got, func(x, y core.FactID) int { return slices.Compare(x[:], y[:]) })
		if !slices.Equal(got, want) {
			rt.Fatalf("union: got %d ids, want %d", len(got), len(want))
		}
		if res.FactsIn != uint64(db) || res.FactsOut != uint64(da) {
			rt.Fatalf("facts in/out %d/%d, want %d/%d (mode %s)", res.FactsIn, res.FactsOut, db, da, res.Mode)
		}
	})
}

func TestPeerThatNeverAnswers(t *testing.T) {
	p := newPair(t, Options{Timeout: 200 * time.Millisecond})
	add(t, []*journal.SignedFact{p.fact(t, true)}, p.a)
	// b's handler is gone: a's messages vanish.
	p.b.net.Handle(ProtocolSync, func(context.Context, transport.Incoming) {})
	res, err := p.a.s.SyncNow(context.Background(), p.b.signer.DeviceID(), core.Namespace{}, nil)
	if !errors.Is(err, ErrSessionFailed) {
		t.Fatalf("err %v, want ErrSessionFailed", err)
	}
	if res[0].Err != reasonTimeout {
		t.Fatalf("reason %q, want %q", res[0].Err, reasonTimeout)
	}
	st := p.a.s.Status()
	if len(st) != 1 || st[0].LastError != reasonTimeout || st[0].Failures != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestLyingSymbolsEndTheSession(t *testing.T) {
	p := newPair(t, Options{Timeout: 2 * time.Second})
	var facts []*journal.SignedFact
	for range 30 {
		facts = append(facts, p.fact(t, true))
	}
	add(t, facts[:10], p.a, p.b)
	add(t, facts[10:], p.a)
	// a's symbols are garbled in flight (after the version and session id).
	p.h.tamper = func(from core.DeviceID, typ string, b []byte) []byte {
		if from == p.a.signer.DeviceID() && (typ == TypeOpen || typ == TypeSketch) && len(b) > 60 {
			for i := 40; i < len(b) && i < 60; i++ {
				b[i] ^= 0x5a
			}
		}
		return b
	}
	res, err := p.a.s.SyncNow(context.Background(), p.b.signer.DeviceID(), core.Namespace{}, nil)
	if err == nil {
		t.Fatalf("a session over garbled symbols succeeded: %+v", res)
	}
	waitIdle(t, p.b.s)
	// Nothing was stored at b beyond what it had.
	if got := len(p.ids(t, p.b)); got != 11 {
		t.Fatalf("b holds %d facts, want 11", got)
	}
	p.h.mu.Lock()
	bad := p.h.misbeh["sync_inconsistent"] + p.h.misbeh["sync_malformed"]
	p.h.mu.Unlock()
	if bad == 0 {
		t.Fatal("the lying peer was not counted")
	}
}

// A conversation that would not end is cut after the round bound, with a
// typed reason, and leaves both stores as they were apart from whole facts.
func TestRoundsAreBounded(t *testing.T) {
	p := newPair(t, Options{MaxSketch: 8, MaxRounds: 2})
	var a, b []*journal.SignedFact
	for range 300 {
		a = append(a, p.fact(t, true))
	}
	for range 300 {
		b = append(b, p.fact(t, false))
	}
	add(t, a, p.a)
	add(t, b, p.b)
	res, err := p.a.s.SyncNow(context.Background(), p.b.signer.DeviceID(), core.Namespace{}, nil)
	if !errors.Is(err, ErrSessionFailed) || res[0].Err != reasonTooLong {
		t.Fatalf("err %v, result %+v; want %s", err, res, reasonTooLong)
	}
}

// Both devices asking at the same moment: one session runs at a time, both
// calls succeed, and every missing fact crosses exactly once.
func TestSimultaneousSessionsSendOnce(t *testing.T) {
	for range 5 {
		p := newPair(t, Options{})
		var a, b []*journal.SignedFact
		for range 120 {
			a = append(a, p.fact(t, true))
		}
		for range 80 {
			b = append(b, p.fact(t, false))
		}
		add(t, a, p.a)
		add(t, b, p.b)
		type out struct {
			res []Progress
			err error
		}
		ra, rb := make(chan out, 1), make(chan out, 1)
		go func() {
			res, err := p.a.s.SyncNow(context.Background(), p.b.signer.DeviceID(), core.Namespace{}, nil)
			ra <- out{res, err}
		}()
		go func() {
			res, err := p.b.s.SyncNow(context.Background(), p.a.signer.DeviceID(), core.Namespace{}, nil)
			rb <- out{res, err}
		}()
		oa, ob := <-ra, <-rb
		if oa.err != nil || ob.err != nil {
			t.Fatalf("a: %v %+v; b: %v %+v", oa.err, oa.res, ob.err, ob.res)
		}
		waitIdle(t, p.a.s)
		waitIdle(t, p.b.s)
		sameIDs(t, p)
		moved := oa.res[0].FactsIn + oa.res[0].FactsOut + ob.res[0].FactsIn + ob.res[0].FactsOut
		if moved != 200 {
			t.Fatalf("%d facts crossed for a difference of 200 (a: %+v, b: %+v)", moved, oa.res[0], ob.res[0])
		}
	}
}

// A garbage open is counted against its sender before anything else is
// decided about it: in a context this device does not share with the
// sender (answered "not shared") as in one it does.
func TestGarbageOpenIsCountedWhateverTheAnswer(t *testing.T) {
	p := newPair(t, Options{})
	junk := append(header(sessionID{7}), 0xff, 0xff, 0xff)
	for _, c := range []core.ContextID{p.ctx, {9}} {
		m := transport.Message{Protocol: ProtocolSync, Context: c, To: p.a.signer.DeviceID(), Type: TypeOpen, Cost: 1, Payload: junk}
		if err := p.b.net.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.h.mu.Lock()
		n := p.h.misbeh["sync_malformed"]
		p.h.mu.Unlock()
		if n == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 garbage opens counted", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
