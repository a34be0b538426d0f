package crdt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/journal/lattice"
)

type replica struct {
	j      *journal.Journal
	store  *Store
	signer *journal.KeySigner
}

func openJournal(t testing.TB, dir string) *journal.Journal {
	j, err := journal.Open(context.Background(), journal.Options{
		Path: filepath.Join(dir, "j.db"), NoSync: true,
		Reducers: []journal.Reducer{Reducer()}, Validators: Validators(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// cluster makes n replicas that share one context namespace.
func cluster(t testing.TB, n int) ([]*replica, core.Namespace) {
	var signers []*journal.KeySigner
	g := journal.Genesis{Kind: core.NamespaceContext, Threshold: 1}
	for i := range n {
		s := journal.NewKeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32)))
		signers = append(signers, s)
		g.Members = append(g.Members, journal.Member{Device: s.DeviceID()})
	}
	payload, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ns := journal.NamespaceOf(core.NamespaceContext, payload)
	genesis, err := journal.SignFact(signers[0], journal.Fact{Namespace: ns, TypeID: journal.TypeGenesis, Payload: payload, Author: signers[0].DeviceID(), Lamport: 1})
	if err != nil {
		t.Fatal(err)
	}
	var rs []*replica
	for _, s := range signers {
		j := openJournal(t, t.TempDir())
		if _, err := j.Append(context.Background(), genesis); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &replica{j: j, store: NewStore(j, s), signer: s})
	}
	return rs, ns
}

func closeAll(rs []*replica) {
	for _, r := range rs {
		r.j.Close()
	}
}

func allFacts(t testing.TB, j *journal.Journal, ns core.Namespace) []*journal.SignedFact {
	var out []*journal.SignedFact
	q := journal.ListQuery{Namespace: &ns, PageSize: journal.MaxPageSize}
	for {
		page, next, err := j.List(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page {
			out = append(out, f.SignedFact)
		}
		if next == "" {
			return out
		}
		q.PageToken = next
	}
}

// syncInto copies every fact of from that to lacks, as anti-entropy would.
func syncInto(t testing.TB, from, to *journal.Journal, ns core.Namespace) {
	for _, f := range allFacts(t, from, ns) {
		if _, err := to.Append(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
}

var objectNames = map[string]Kind{"c": KindCounter, "r": KindRegister, "s": KindSet, "m": KindMap}

func snapshot(t testing.TB, s *Store, ns core.Namespace) map[string]Object {
	out := map[string]Object{}
	for name := range objectNames {
		o, err := s.Get(context.Background(), ns, name)
		if errors.Is(err, core.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[name] = o
	}
	return out
}

func randomOp(t *rapid.T, kind Kind) Op {
	elem := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "elem")
	switch kind {
	case KindCounter:
		return Op{Type: OpCounterAdd, Amount: rapid.Int64Range(-5, 5).Filter(func(v int64) bool { return v != 0 }).Draw(t, "amount")}
	case KindRegister:
		return Op{Type: OpRegisterSet, Value: rapid.StringMatching(`[a-z]{0,3}`).Draw(t, "value")}
	case KindSet:
		return Op{Type: rapid.SampledFrom([]OpType{OpSetAdd, OpSetAdd, OpSetRemove}).Draw(t, "op"), Element: elem}
	default:
		return Op{Type: rapid.SampledFrom([]OpType{OpMapSet, OpMapSet, OpMapRemove}).Draw(t, "op"), Element: elem,
			Value: rapid.StringMatching(`[a-z]{1,2}`).Draw(t, "value")}
	}
}

// Replicas that exchange facts in any pattern converge, and any permutation
// of the same facts reduces to the same objects.
func TestReplicasConverge(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		rs, ns := cluster(t, 3)
		defer closeAll(rs)
		ctx := context.Background()
		steps := rapid.IntRange(1, 25).Draw(rt, "steps")
		for range steps {
			if rapid.Bool().Draw(rt, "sync") {
				a, b := rapid.IntRange(0, 2).Draw(rt, "from"), rapid.IntRange(0, 2).Draw(rt, "to")
				syncInto(t, rs[a].j, rs[b].j, ns)
				continue
			}
			r := rs[rapid.IntRange(0, 2).Draw(rt, "replica")]
			name := rapid.SampledFrom([]string{"c", "r", "s", "m"}).Draw(rt, "name")
			_, _, err := r.store.Update(ctx, ns, name, randomOp(rt, objectNames[name]))
			if err != nil && !errors.Is(err, core.ErrNotFound) {
				rt.Fatalf("update: %v", err)
			}
		}
		for _, a := range rs {
			for _, b := range rs {
				syncInto(t, a.j, b.j, ns)
			}
		}
		want := snapshot(t, rs[0].store, ns)
		for i, r := range rs[1:] {
			if got := snapshot(t, r.store, ns); !reflect.DeepEqual(got, want) {
				rt.Fatalf("replica %d diverged:\n%v\nvs\n%v", i+1, got, want)
			}
		}
		facts := allFacts(t, rs[0].j, ns)
		perm := rapid.Permutation(facts).Draw(rt, "order")
		fresh := openJournal(t, t.TempDir())
		defer fresh.Close()
		for _, f := range perm {
			// The genesis must come first; everything after may arrive in any order.
			if f.TypeID == journal.TypeGenesis {
				if _, err := fresh.Append(ctx, f); err != nil {
					rt.Fatal(err)
				}
			}
		}
		for _, f := range perm {
			if _, err := fresh.Append(ctx, f); err != nil {
				rt.Fatal(err)
			}
		}
		if got := snapshot(t, NewStore(fresh, rs[0].signer), ns); !reflect.DeepEqual(got, want) {
			rt.Fatalf("permuted replay diverged:\n%v\nvs\n%v", got, want)
		}
	})
}

// Concurrent local adds to one set must take distinct dots: removing one
// element afterwards removes exactly that element.
func TestConcurrentLocalUpdatesKeepDistinctDots(t *testing.T) {
	rs, ns := cluster(t, 1)
	defer closeAll(rs)
	ctx := context.Background()
	s := rs[0].store
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.Update(ctx, ns, "s", Op{Type: OpSetAdd, Element: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
			if _, _, err := s.Update(ctx, ns, "m", Op{Type: OpMapSet, Element: fmt.Sprint(i), Value: "v"}); err != nil {
				t.Error(err)
			}
			if _, _, err := s.Update(ctx, ns, "c", Op{Type: OpCounterAdd, Amount: 2}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, _, err := s.Update(ctx, ns, "s", Op{Type: OpSetRemove, Element: "7"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update(ctx, ns, "m", Op{Type: OpMapRemove, Element: "7"}); err != nil {
		t.Fatal(err)
	}
	set, _ := s.Get(ctx, ns, "s")
	m, _ := s.Get(ctx, ns, "m")
	c, _ := s.Get(ctx, ns, "c")
	if len(set.Elements) != 31 || len(m.Entries) != 31 || c.Counter != 64 || c.Updates != 32 {
		t.Fatalf("set %d elements, map %d entries, counter %d", len(set.Elements), len(m.Entries), c.Counter)
	}
}

func TestKindIsDecidedByFirstUpdateEverywhere(t *testing.T) {
	rs, ns := cluster(t, 2)
	defer closeAll(rs)
	ctx := context.Background()
	if _, _, err := rs[0].store.Update(ctx, ns, "x", Op{Type: OpCounterAdd, Amount: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rs[1].store.Update(ctx, ns, "x", Op{Type: OpSetAdd, Element: "e"}); err != nil {
		t.Fatal(err)
	}
	syncInto(t, rs[0].j, rs[1].j, ns)
	syncInto(t, rs[1].j, rs[0].j, ns)
	a, _ := rs[0].store.Get(ctx, ns, "x")
	b, _ := rs[1].store.Get(ctx, ns, "x")
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("replicas disagree on x: %+v vs %+v", a, b)
	}
	wrong := Op{Type: OpSetAdd, Element: "f"}
	if a.Kind == KindSet {
		wrong = Op{Type: OpCounterAdd, Amount: 1}
	}
	if _, _, err := rs[0].store.Update(ctx, ns, "x", wrong); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("update of the losing kind: %v", err)
	}
}

func TestValidatorRejectsForgedRegisterStamp(t *testing.T) {
	rs, ns := cluster(t, 2)
	defer closeAll(rs)
	s := rs[0].signer
	// A register write stamped with someone else's replica id.
	u := update{op: OpRegisterSet, name: "r"}
	u.delta, _ = registerLat{}.Assign(registerTS(9, rs[1].signer.DeviceID()), "v").MarshalBinary()
	sf, err := journal.SignFact(s, journal.Fact{Namespace: ns, TypeID: TypeRegister, Payload: u.encode(), Author: s.DeviceID(), Lamport: 9})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs[0].j.Append(context.Background(), sf); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("forged stamp accepted: %v", err)
	}
}

func FuzzDecodeUpdate(f *testing.F) {
	f.Add((&update{op: OpCounterAdd, name: "c", amount: -3}).encode())
	f.Add((&update{op: OpSetAdd, name: "s", delta: []byte{1, 2}}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := decodeUpdate(b)
		if err != nil {
			return
		}
		if !bytes.Equal(u.encode(), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	f.Add((&objectState{kind: KindSet, updates: 3, value: []byte{9}}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeState(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.encode(), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

func registerTS(lamport uint64, d core.DeviceID) lattice.Timestamp[device] {
	return lattice.Timestamp[device]{Lamport: lamport, Replica: device(d)}
}
