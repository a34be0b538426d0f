package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

// holdingObserver counts commits and, once armed, holds the writer after
// its next commit until released, so that everything queued meanwhile
// meets in the commit after.
type holdingObserver struct {
	mu      sync.Mutex
	commits int
	hold    chan struct{}
}

func (o *holdingObserver) ObserveCommit(int, int, time.Duration, error) {
	o.mu.Lock()
	o.commits++
	h := o.hold
	o.hold = nil
	o.mu.Unlock()
	if h != nil {
		<-h
	}
}

func (o *holdingObserver) arm() (release func()) {
	h := make(chan struct{})
	o.mu.Lock()
	o.hold = h
	o.mu.Unlock()
	return func() { close(h) }
}

func (o *holdingObserver) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.commits
}

// capReducer counts app.cap/v1 facts and refuses the one past capLimit: a
// refusal that depends on what is stored, which only the writer can make.
type capReducer struct{}

const capLimit = 5

var errCapReached = fmt.Errorf("cap of %d reached: %w", capLimit, core.ErrFailedPrecondition)

func (capReducer) Name() string                    { return "test.cap" }
func (capReducer) Handles(t string) bool           { return t == "app.cap/v1" }
func (capReducer) Key(*SignedFact) ([]byte, error) { return []byte("n"), nil }
func (capReducer) Commutative() bool               { return true }
func (capReducer) Apply(s []byte, _ *SignedFact) ([]byte, error) {
	var n uint64
	if len(s) == 8 {
		n = binary.BigEndian.Uint64(s)
	}
	if n >= capLimit {
		return nil, errCapReached
	}
	return binary.BigEndian.AppendUint64(nil, n+1), nil
}

func openStreamFixture(t *testing.T, obs CommitObserver) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(context.Background(), Options{
		Path: path, Reducers: []Reducer{capReducer{}}, Observer: obs,
		Clock: core.NewManualClock(time.UnixMilli(1_700_000_000_000)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	s := seededSigner(1)
	return &fixture{j: j, signer: s, ns: found(t, j, s, core.NamespaceAuthority, s), path: path}
}

// Facts keep the order they were added in (seq and lamport), each is stored
// as drafted, and facts queued while a commit is under way share the next
// one instead of taking one each.
func TestLocalStreamOrderAndSharedCommits(t *testing.T) {
	obs := &holdingObserver{}
	f := openStreamFixture(t, obs)
	ctx := context.Background()
	before := obs.count()
	release := obs.arm()
	const n = 300
	ls := f.j.NewLocalStream(f.signer)
	lps := make([]*LocalPending, n)
	for i := range lps {
		lps[i] = ls.Add(ctx, Draft{Namespace: f.ns, TypeID: "app.x/v1", Payload: fmt.Appendf(nil, "%d", i)})
	}
	// All queued (the first commit holds the writer), then let it go on.
	for _, lp := range lps {
		<-lp.queued
	}
	release()
	var prev Committed
	for i, lp := range lps {
		c, err := lp.Wait(ctx)
		if err != nil {
			t.Fatalf("fact %d: %v", i, err)
		}
		if i > 0 && (c.Seq != prev.Seq+1 || c.Lamport <= prev.Lamport) {
			t.Fatalf("fact %d at seq %d lamport %d after seq %d lamport %d", i, c.Seq, c.Lamport, prev.Seq, prev.Lamport)
		}
		sf, err := f.j.Get(ctx, c.ID)
		if err != nil || string(sf.Payload) != fmt.Sprint(i) || sf.Namespace != f.ns || sf.Author != f.signer.DeviceID() {
			t.Fatalf("fact %d stored as %+v: %v", i, sf, err)
		}
		prev = c
	}
	if got := obs.count() - before; got > 2 {
		t.Errorf("%d facts took %d commits, want at most 2", n, got)
	}
}

// The first fact that fails stops the stream: the facts before it commit,
// it fails with its own error, and none after it is stored, whether it
// fails its checks, its namespace or membership, or the writer's reducer.
func TestLocalStreamStopsAtFirstFailure(t *testing.T) {
	const n, bad = 10, capLimit
	other := seededSigner(2)
	tests := []struct {
		name string
		typ  string
		// at gives the draft of fact bad; nil leaves it like the others.
		at   func(f *fixture, foreign core.Namespace) Draft
		want error
	}{
		{"malformed type", "app.x/v1", func(f *fixture, _ core.Namespace) Draft {
			return Draft{Namespace: f.ns, TypeID: "Not A Type"}
		}, core.ErrInvalidArgument},
		{"unknown namespace", "app.x/v1", func(*fixture, core.Namespace) Draft {
			return Draft{Namespace: core.ContextNamespace(core.ContextID{9}), TypeID: "app.x/v1"}
		}, core.ErrNotFound},
		{"not a member", "app.x/v1", func(_ *fixture, foreign core.Namespace) Draft {
			return Draft{Namespace: foreign, TypeID: "app.x/v1"}
		}, core.ErrPermissionDenied},
		{"refused by the reducer", "app.cap/v1", nil, errCapReached},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := openStreamFixture(t, nil)
			foreign := found(t, f.j, other, core.NamespaceAuthority, other)
			ctx := context.Background()
			before, err := f.j.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ls := f.j.NewLocalStream(f.signer)
			lps := make([]*LocalPending, n)
			for i := range lps {
				d := Draft{Namespace: f.ns, TypeID: tc.typ, Payload: fmt.Appendf(nil, "%d", i)}
				if i == bad && tc.at != nil {
					d = tc.at(f, foreign)
				}
				lps[i] = ls.Add(ctx, d)
			}
			for i, lp := range lps {
				_, err := lp.Wait(ctx)
				switch {
				case i < bad && err != nil:
					t.Fatalf("fact %d: %v", i, err)
				case i == bad && !errors.Is(err, tc.want):
					t.Fatalf("fact %d: %v, want %v", i, err, tc.want)
				case i > bad && !errors.Is(err, errStreamStopped):
					t.Fatalf("fact %d after the failure: %v", i, err)
				}
			}
			after, err := f.j.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := after.Facts - before.Facts; got != bad {
				t.Fatalf("%d facts stored, want the %d before the failure", got, bad)
			}
		})
	}
}

// Once ctx ends, facts not yet queued are refused and the stream stops:
// what was stored is a prefix of what was added, and exactly the facts
// whose Wait succeeded.
func TestLocalStreamContextEnds(t *testing.T) {
	f := openStreamFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ls := f.j.NewLocalStream(f.signer)
	const n = 200
	lps := make([]*LocalPending, 0, n)
	for i := range n {
		if i == n/2 {
			cancel()
		}
		lps = append(lps, ls.Add(ctx, Draft{Namespace: f.ns, TypeID: "app.x/v1", Payload: fmt.Appendf(nil, "%d", i)}))
	}
	bg := context.Background()
	ok := 0
	for i, lp := range lps {
		_, err := lp.Wait(bg)
		switch {
		case err == nil && ok == i:
			ok++
		case err == nil:
			t.Fatalf("fact %d stored after fact %d failed", i, ok)
		case !errors.Is(err, context.Canceled) && !errors.Is(err, errStreamStopped):
			t.Fatalf("fact %d: %v", i, err)
		}
	}
	if ok > n/2 {
		t.Fatalf("%d facts stored, but ctx ended before fact %d was added", ok, n/2)
	}
	facts, _, err := f.j.List(bg, ListQuery{Namespace: &f.ns, TypeID: "app.x/v1", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) != ok {
		t.Fatalf("%d facts stored, %d acknowledged", len(facts), ok)
	}
	for i, sf := range facts {
		if string(sf.Payload) != fmt.Sprint(i) {
			t.Fatalf("stored fact %d has payload %q", i, sf.Payload)
		}
	}
}
