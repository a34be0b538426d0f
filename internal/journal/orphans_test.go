package journal

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

func openWith(t *testing.T, opts Options) *Journal {
	t.Helper()
	opts.Path = filepath.Join(t.TempDir(), "journal.db")
	opts.NoSync = true
	opts.Clock = core.NewManualClock(time.UnixMilli(1_700_000_000_000))
	j, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// genesisFact signs a genesis of kind founded by author with members.
func genesisFact(t *testing.T, kind core.NamespaceKind, author *KeySigner, members ...*KeySigner) (*SignedFact, core.Namespace) {
	t.Helper()
	g := Genesis{Kind: kind, Threshold: 1}
	for _, m := range members {
		g.Members = append(g.Members, Member{Device: m.DeviceID()})
	}
	payload, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ns := NamespaceOf(kind, payload)
	sf, err := SignFact(author, Fact{Namespace: ns, TypeID: TypeGenesis, Author: author.DeviceID(), Lamport: 1, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return sf, ns
}

func signed(t *testing.T, s *KeySigner, ns core.Namespace, typ string, lamport uint64, payload []byte) *SignedFact {
	t.Helper()
	sf, err := SignFact(s, Fact{Namespace: ns, TypeID: typ, Author: s.DeviceID(), Lamport: lamport, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return sf
}

func receive(t *testing.T, j *Journal, from core.DeviceID, sf *SignedFact) Received {
	t.Helper()
	r, err := j.Receive(context.Background(), from, sf)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return r
}

func TestOrphansWaitForTheirPrerequisite(t *testing.T) {
	ctx := context.Background()
	a, c := seededSigner(1), seededSigner(3)
	peer := seededSigner(50).DeviceID()
	tests := []struct {
		name string
		// setup stores what is known before the orphan arrives; admit
		// brings the prerequisite. Each returns the namespace.
		orphanBy *KeySigner
		setup    func(t *testing.T, j *Journal, g *SignedFact)
		admit    func(t *testing.T, j *Journal, g *SignedFact, ns core.Namespace)
	}{
		{
			name: "unknown namespace, then its genesis from a local append", orphanBy: a,
			setup: func(*testing.T, *Journal, *SignedFact) {},
			admit: func(t *testing.T, j *Journal, g *SignedFact, _ core.Namespace) {
				if _, err := j.Commit(ctx, Txn{Facts: []*SignedFact{g}}); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "author not a member, then the participants fact from a peer", orphanBy: c,
			setup: func(t *testing.T, j *Journal, g *SignedFact) { receive(t, j, peer, g) },
			admit: func(t *testing.T, j *Journal, _ *SignedFact, ns core.Namespace) {
				r := receive(t, j, peer, signed(t, a, ns, TypeContextParticipants, 2, participantsPayload(t, c)))
				if r.Orphaned {
					t.Fatal("the admitting fact was itself orphaned")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := openWith(t, Options{})
			g, ns := genesisFact(t, core.NamespaceContext, a, a)
			tc.setup(t, j, g)
			orphan := signed(t, tc.orphanBy, ns, "chat", 3, []byte("early"))

			// Append, the strict path, still refuses it.
			if _, err := j.Append(ctx, orphan); err == nil {
				t.Fatal("Append accepted a fact lacking its prerequisite")
			}
			r := receive(t, j, peer, orphan)
			if !r.Orphaned || r.ID != orphan.ID {
				t.Fatalf("received %+v, want orphaned", r)
			}
			if n, b, ev := j.OrphanStats(); n != 1 || b == 0 || ev != 0 {
				t.Fatalf("stats %d %d %d", n, b, ev)
			}
			if _, err := j.Get(ctx, orphan.ID); !errors.Is(err, core.ErrNotFound) {
				t.Fatalf("orphan stored early: %v", err)
			}
			// Receiving it again holds it once.
			if r := receive(t, j, peer, orphan); !r.Orphaned {
				t.Fatal("second receive not orphaned")
			}
			w, err := j.Watch(ctx, WatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()

			tc.admit(t, j, g, ns)
			if _, err := j.Get(ctx, orphan.ID); err != nil {
				t.Fatalf("orphan not inserted once admitted: %v", err)
			}
			if n, b, ev := j.OrphanStats(); n != 0 || b != 0 || ev != 0 {
				t.Fatalf("stats after retry %d %d %d", n, b, ev)
			}
			st, err := j.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Orphans != 0 || st.Facts != 3 && st.Facts != 2 {
				t.Fatalf("stats %+v", st)
			}
			// Watchers hear of the retried fact like of any other.
			for {
				ev, err := w.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if ev.ID == orphan.ID {
					break
				}
			}
		})
	}
}

// A chain a → b → c of admissions received backwards ends fully stored.
func TestOrphanChainResolves(t *testing.T) {
	ctx := context.Background()
	a, b, c := seededSigner(1), seededSigner(2), seededSigner(3)
	peer := seededSigner(50).DeviceID()
	j := openWith(t, Options{})
	g, ns := genesisFact(t, core.NamespaceContext, a, a)
	chain := []*SignedFact{
		g,
		signed(t, a, ns, TypeContextParticipants, 2, participantsPayload(t, b)),
		signed(t, b, ns, TypeContextParticipants, 3, participantsPayload(t, c)),
		signed(t, c, ns, "chat", 4, []byte("hi")),
	}
	for i := len(chain) - 1; i >= 0; i-- {
		r := receive(t, j, peer, chain[i])
		if r.Orphaned != (i > 0) {
			t.Fatalf("fact %d orphaned=%v", i, r.Orphaned)
		}
	}
	for i, sf := range chain {
		if _, err := j.Get(ctx, sf.ID); err != nil {
			t.Fatalf("fact %d: %v", i, err)
		}
	}
	if n, _, _ := j.OrphanStats(); n != 0 {
		t.Fatalf("%d orphans left", n)
	}
}

func orphanFacts(t *testing.T, s *KeySigner, ns core.Namespace, n, size int) []*SignedFact {
	out := make([]*SignedFact, n)
	for i := range out {
		p := make([]byte, size)
		copy(p, fmt.Sprint(i))
		out[i] = signed(t, s, ns, "chat", 2, p)
	}
	return out
}

func TestOrphanPoolBounds(t *testing.T) {
	a := seededSigner(1)
	_, ns := genesisFact(t, core.NamespaceContext, a, a)
	x, y := core.DeviceID{1}, core.DeviceID{2}
	facts := orphanFacts(t, a, ns, 200, 100)
	size := int64(len(facts[0].Body) + len(facts[0].Signature))

	t.Run("a flood from one sender evicts only its own oldest", func(t *testing.T) {
		p := newOrphanPool(OrphanLimits{MaxPerSender: 4, MaxTotal: 10})
		for _, sf := range facts[:3] {
			p.add(y, sf)
		}
		for _, sf := range facts[3:] {
			if !p.add(x, sf) {
				t.Fatal("the newest orphan was not kept")
			}
		}
		for _, sf := range facts[:3] {
			if p.byID[sf.ID] == nil {
				t.Fatalf("the other sender's orphan %s was evicted", sf.ID)
			}
		}
		for _, sf := range facts[len(facts)-4:] {
			if p.byID[sf.ID] == nil {
				t.Fatal("the flooder's newest were evicted instead of its oldest")
			}
		}
		if n, b, ev := p.stats(); n != 7 || b != uint64(7*size) || ev != uint64(len(facts)-3-4) {
			t.Fatalf("stats %d %d %d", n, b, ev)
		}
	})
	t.Run("per-sender bytes", func(t *testing.T) {
		p := newOrphanPool(OrphanLimits{MaxPerSenderBytes: 3 * size})
		for _, sf := range facts[:10] {
			p.add(x, sf)
		}
		if n, b, ev := p.stats(); n != 3 || b != uint64(3*size) || ev != 7 {
			t.Fatalf("stats %d %d %d", n, b, ev)
		}
	})
	t.Run("total bounds across many senders", func(t *testing.T) {
		p := newOrphanPool(OrphanLimits{MaxPerSender: 8, MaxTotal: 10, MaxTotalBytes: 9 * size})
		for i, sf := range facts[:80] {
			from := core.DeviceID{byte(i % 20)}
			if !p.add(from, sf) {
				t.Fatalf("orphan %d not kept", i)
			}
			if n, b, _ := p.stats(); n > 10 || b > uint64(9*size) {
				t.Fatalf("after %d: %d orphans, %d bytes", i, n, b)
			}
		}
		if n, _, ev := p.stats(); n != 9 || ev != 71 {
			t.Fatalf("%d held, %d evicted", n, ev)
		}
		for from, sq := range p.bySender {
			if sq.q.Len() > 1 {
				t.Fatalf("sender %v holds %d while others hold none", from, sq.q.Len())
			}
		}
	})
	t.Run("an orphan larger than a sender's share", func(t *testing.T) {
		p := newOrphanPool(OrphanLimits{MaxPerSenderBytes: size - 1})
		if p.add(x, facts[0]) {
			t.Fatal("kept")
		}
		if n, _, ev := p.stats(); n != 0 || ev != 1 {
			t.Fatalf("stats %d %d", n, ev)
		}
	})
	t.Run("the same fact twice", func(t *testing.T) {
		p := newOrphanPool(OrphanLimits{})
		p.add(x, facts[0])
		p.add(y, facts[0])
		if n, _, _ := p.stats(); n != 1 {
			t.Fatalf("%d held", n)
		}
	})
}

// Through Receive: a peer flooding orphans neither pushes out another peer's
// orphan nor grows the pool past its bounds, and the other peer's orphans are
// inserted when their namespace arrives.
func TestOrphanFloodThroughReceive(t *testing.T) {
	ctx := context.Background()
	a := seededSigner(1)
	flooder, honest := seededSigner(60).DeviceID(), seededSigner(61).DeviceID()
	lim := OrphanLimits{MaxPerSender: 16, MaxPerSenderBytes: 96 << 10, MaxTotal: 24, MaxTotalBytes: 128 << 10}
	j := openWith(t, Options{Orphans: lim})
	g, ns := genesisFact(t, core.NamespaceContext, a, a)
	mine := orphanFacts(t, a, ns, 2, 10)
	for _, sf := range mine {
		receive(t, j, honest, sf)
	}
	// The flood: orphans of namespaces nobody will found, 4 KiB each.
	for i := range 300 {
		junk := signed(t, a, core.Namespace{Kind: core.NamespaceContext, ID: core.Hash{byte(i), byte(i >> 8), 7}}, "chat", 1, make([]byte, 4<<10))
		if r := receive(t, j, flooder, junk); !r.Orphaned {
			t.Fatal("junk not orphaned")
		}
		if n, b, _ := j.OrphanStats(); n > uint64(lim.MaxTotal) || b > uint64(lim.MaxTotalBytes) {
			t.Fatalf("pool grew to %d orphans, %d bytes", n, b)
		}
	}
	if n, _, ev := j.OrphanStats(); n != uint64(2+lim.MaxPerSender) || ev != uint64(300-lim.MaxPerSender) {
		t.Fatalf("%d orphans, %d evicted", n, ev)
	}
	if _, err := j.Commit(ctx, Txn{Facts: []*SignedFact{g}}); err != nil {
		t.Fatal(err)
	}
	for _, sf := range mine {
		if _, err := j.Get(ctx, sf.ID); err != nil {
			t.Fatalf("the honest peer's orphan was lost: %v", err)
		}
	}
	st, err := j.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Orphans != uint64(lim.MaxPerSender) || st.OrphansEvicted != uint64(300-lim.MaxPerSender) {
		t.Fatalf("stats %+v", st)
	}
}

// Salvage reads facts in file order, where a fact may come before the fact
// that admitted its author; it must still recover both.
func TestSalvageRecoversFactsOfAddedMembers(t *testing.T) {
	ctx := context.Background()
	a, b := seededSigner(1), seededSigner(2)
	peer := seededSigner(50).DeviceID()
	j := openWith(t, Options{})
	path := j.db.Path()
	g, ns := genesisFact(t, core.NamespaceContext, a, a)
	// 2 KiB, so that facts/<ns> is not a bucket inlined in its parent's page,
	// which the page scan does not read.
	early := signed(t, b, ns, "chat", 2, make([]byte, 2<<10))
	facts := []*SignedFact{g, early, signed(t, a, ns, TypeContextParticipants, 5, participantsPayload(t, b))}
	for _, sf := range facts {
		receive(t, j, peer, sf)
	}
	j.Close()

	to := openWith(t, Options{})
	rep, err := Salvage(ctx, path, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.FactsRecovered != 3 || rep.FactsRejected != 0 {
		t.Fatalf("recovered %d, rejected %d: %v", rep.FactsRecovered, rep.FactsRejected, rep.RejectedReasons)
	}
	if got, _ := to.Members(ctx, ns); !slices.Equal(got, sortedDevices(a, b)) {
		t.Fatalf("members %v", got)
	}
}
