package account

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/tree"
)

// restartLogged is restartAs with a logger that records the service's
// warnings.
func restartLogged(t *testing.T, d *device, auth core.AuthorityID, clock core.Clock, log *zap.Logger) {
	t.Helper()
	restartAs(t, d, auth, clock)
	d.s.o.Logger = log.With(zap.Stringer("device", deviceOf(d.key)))
}

// opFacts counts the account's tree-op facts d holds.
func opFacts(t *testing.T, d *device, auth core.AuthorityID) int {
	t.Helper()
	ns := core.AuthorityNamespace(auth)
	page, _, err := d.j.List(context.Background(), journal.ListQuery{Namespace: &ns, TypeID: TypeTreeOp, PageSize: journal.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return len(page)
}

// Devices join one after another, each with a code from a random device
// that joined before it, while the account's facts reach each device late
// and in no particular order: inviters make their AddLeafs on states the
// others have moved past, those lose or reroute the chain, and their
// authors make them again. In the end every device lists every device,
// every device derives the same key, and no device's path keys have
// drifted from the tree (no update path it cannot open).
func TestJoinsThroughRandomInvitersConverge(t *testing.T) {
	const devices = 14
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ctx := context.Background()
			clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			obs, logs := observer.New(zapcore.WarnLevel)
			log := zap.New(obs)
			ds := make([]*device, devices)
			for i := range ds {
				ds[i] = openDevice(t, byte(10*i+1), clock)
			}
			auth := ds[0].s.o.Authority
			restartLogged(t, ds[0], auth, clock, log)
			// held is what each device's journal holds of the account,
			// so a sync sends only what is new to it.
			held := map[*device]map[core.FactID]bool{}
			ns := core.AuthorityNamespace(auth)
			send := func(from *device, to ...*device) {
				page, _, err := from.j.List(ctx, journal.ListQuery{Namespace: &ns, PageSize: journal.MaxPageSize})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range to {
					if held[d] == nil {
						held[d] = map[core.FactID]bool{}
					}
					for _, f := range page {
						if held[d][f.ID] {
							continue
						}
						if _, err := d.j.Append(ctx, f.SignedFact); err != nil && !errors.Is(err, core.ErrAlreadyExists) {
							t.Fatalf("sync fact %s: %v", f.ID, err)
						}
						held[d][f.ID] = true
					}
				}
			}
			// gossip delivers the account's facts from one random device
			// to another, which then looks at its tree as the daemon does
			// when tree ops arrive.
			gossip := func(joined int) {
				from, to := ds[rng.IntN(joined)], ds[rng.IntN(joined)]
				if from == to {
					return
				}
				send(from, to)
				if err := to.s.Maintain(ctx); err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i < devices; i++ {
				// An inviter whose own addition lost, and has not been
				// made again yet, refuses; the person tries another.
				for {
					inviter := ds[rng.IntN(i)]
					_, err := tryEnroll(t, inviter, ds[i], clock)
					if err == nil {
						break
					}
					if !errors.Is(err, core.ErrFailedPrecondition) {
						t.Fatal(err)
					}
					gossip(i)
				}
				restartLogged(t, ds[i], auth, clock, log)
				for range rng.IntN(3) {
					gossip(i + 1)
				}
			}
			// Then every device hears from every other until nothing new
			// is made.
			quiet := false
			for round := 0; round < 40 && !quiet; round++ {
				before := opFacts(t, ds[0], auth)
				for _, from := range ds {
					send(from, ds...)
				}
				for _, d := range ds {
					if err := d.s.Maintain(ctx); err != nil {
						t.Fatal(err)
					}
				}
				for _, from := range ds {
					send(from, ds...)
				}
				quiet = opFacts(t, ds[0], auth) == before
			}
			if !quiet {
				t.Fatalf("devices still make tree ops after 40 rounds: %d op facts", opFacts(t, ds[0], auth))
			}
			want := mustKey(t, ds[0])
			for i, d := range ds {
				v, err := d.s.Show(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(v.Devices) != devices {
					t.Errorf("device %d lists %d devices", i, len(v.Devices))
				}
				k, err := d.s.Key(ctx)
				if err != nil {
					t.Errorf("device %d: %v", i, err)
				} else if *k != *want {
					t.Errorf("device %d's key %+v, device 0's %+v", i, k, want)
				}
			}
			if t.Failed() {
				for i, d := range ds {
					v, _ := d.s.Show(ctx)
					for _, op := range v.Ops {
						t.Logf("dev %d (%s): op %s %s author %d parent %s %s by %s reason %q again %v", i, deviceOf(d.key), op.ID, op.Kind, op.Author, op.Parent, op.Status, op.By, op.Reason, op.Reproposed)
					}
				}
			}
			for _, e := range logs.All() {
				t.Errorf("%s: %v", e.Message, e.ContextMap())
			}
			t.Logf("%d tree ops for %d joins", opFacts(t, ds[0], auth), devices-1)
		})
	}
}

// A device's op made on a state far behind the others' (an inviter that
// had not caught up) can win there and reroute the chain past every state
// whose keys a device keeps. The devices still hold the keys of the states
// the two chains share: a device's own update path on that shared part
// stays open to it, so it opens the next path sealed to it.
func TestDeepRerouteKeepsOwnPathKeys(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	obs, logs := observer.New(zapcore.WarnLevel)
	a, b := openDevice(t, 1, clock), openDevice(t, 2, clock)
	auth := a.s.o.Authority
	enroll(t, a, b, clock)
	restartLogged(t, a, auth, clock, zap.New(obs))
	if _, err := a.s.UpdatePath(ctx); err != nil {
		t.Fatal(err)
	}
	syncAccount(t, auth, a, b)

	// b makes an update on the state after a's, and holds it back while a
	// moves the chain on by twice the states a device keeps keys for; b's
	// update must beat a's first op there to reroute the chain.
	b.s.mu.Lock()
	r, err := b.s.maintained(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stale := r.reducer.State()
	b.s.mu.Unlock()
	var first tree.OpID
	for i := range 2 * keepEpochs {
		publishOps(t, a, func(st *tree.State, me tree.LeafIndex) []*tree.Op {
			return []*tree.Op{{Parent: st.Name(), Author: me, Body: tree.RotateEpochBody{}}}
		})
		if i == 0 {
			for id, op := range showOps(t, a) {
				if op.Kind == tree.KindRotateEpoch {
					first = id
				}
			}
		}
	}
	b.s.mu.Lock()
	publishUpdateBeating(t, ctx, b.s, r, stale, first)
	b.s.mu.Unlock()

	syncAccount(t, auth, b, a)
	syncAccount(t, auth, a, b)
	for _, d := range []*device{a, b} {
		if err := d.s.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if va, err := a.s.Show(ctx); err != nil || va.Epoch != stale.Epoch()+1 {
		t.Fatalf("a after the reroute: %+v, %v", va, err)
	}
	ka, err := a.s.Key(ctx)
	if err != nil {
		t.Fatalf("a after the reroute: %v", err)
	}
	if kb := mustKey(t, b); *ka != *kb {
		t.Fatalf("a and b disagree after the reroute: %+v, %+v", ka, kb)
	}
	for _, e := range logs.All() {
		t.Errorf("%s: %v", e.Message, e.ContextMap())
	}
}
