package session_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/session"
)

// typeCeremony stands for a ceremony's outcome fact: its validator takes
// "commit" or "abort" and refuses anything else.
const typeCeremony = "test.ceremony/v1"

func validateCeremony(f *journal.SignedFact) error {
	switch string(f.Payload) {
	case "commit", "abort":
		return nil
	}
	return fmt.Errorf("ceremony outcome %q: %w", f.Payload, core.ErrInvalidArgument)
}

// facter is the relay with facts attached to the send of one label.
type facter struct {
	session.Relay
	label  string
	drafts []journal.Draft
}

func (h *facter) Send(ctx context.Context, s session.Info, a choreo.Action) ([]byte, []journal.Draft, error) {
	payload, _, err := h.Relay.Send(ctx, s, a)
	if a.Label != h.label {
		return payload, nil, err
	}
	return payload, h.drafts, err
}

// found writes into n's journal the genesis of a namespace of kind whose
// members are the given signers, and returns it.
func found(t testing.TB, n *rnode, kind core.NamespaceKind, members ...journal.Signer) core.Namespace {
	t.Helper()
	g := journal.Genesis{Kind: kind, Threshold: 1}
	for _, m := range members {
		g.Members = append(g.Members, journal.Member{Device: m.DeviceID()})
	}
	rand.Read(g.Nonce[:])
	payload, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ns := journal.NamespaceOf(kind, payload)
	if _, _, err := n.j.AppendLocal(context.Background(), members[0], journal.Draft{Namespace: ns, TypeID: journal.TypeGenesis, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func otherSigner() *journal.KeySigner {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	return journal.NewKeySigner(key)
}

func ceremonyFacts(t testing.TB, n *rnode) []journal.StoredFact {
	t.Helper()
	fs, _, err := n.j.List(context.Background(), journal.ListQuery{TypeID: typeCeremony, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// spentTo is what n has been charged for its sends to peer on their link.
func spentTo(t testing.TB, n, peer *rnode) uint64 {
	t.Helper()
	e, err := n.l.Get(context.Background(), budget.Key{Context: core.LinkContext(n.dev, peer.dev), Peer: peer.dev})
	if errors.Is(err, core.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return e.State.Spent
}

// Facts a handler attaches commit with the message's charge, in the
// namespaces they name; a send the handler attaches none to keeps the
// runtime's own fact for its journal_facts annotation.
func TestHandlerFactsCommitWithTheCharge(t *testing.T) {
	a, b, c := trio(t)
	group := found(t, b, core.NamespaceContext, otherSigner(), b.signer)
	h := &facter{label: "Fwd1", drafts: []journal.Draft{
		{Namespace: group, TypeID: typeCeremony, Payload: []byte("commit")},
		{Namespace: b.ns, TypeID: typeCeremony, Payload: []byte("abort")},
	}}
	if err := b.rt.Register("Costly", "B", h); err != nil {
		t.Fatal(err)
	}
	s, err := a.rt.Run(context.Background(), "Costly", abc(a, b, c), session.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitSession(t, b, s.ID); got.State != session.StateCompleted || got.Steps != 3 {
		t.Fatalf("B: %+v", got)
	}
	fs := ceremonyFacts(t, b)
	got := map[core.Namespace]string{}
	for _, f := range fs {
		if f.Author != b.dev {
			t.Errorf("fact %x authored by %s, want B", f.ID, f.Author)
		}
		got[f.Namespace] = string(f.Payload)
	}
	if len(fs) != 2 || got[group] != "commit" || got[b.ns] != "abort" {
		t.Fatalf("B's ceremony facts: %v", got)
	}
	// Fwd1 carried the handler's facts only; Fwd2 the annotation's.
	if sf := sessionFacts(t, b); len(sf) != 1 || sf[0].Fact != "fwd2" || sf[0].Label != "Fwd2" {
		t.Fatalf("B's session facts: %+v", sf)
	}
	if n := spentTo(t, b, c); n != 2 {
		t.Fatalf("B was charged %d for its sends to C, want 2", n)
	}
	if len(ceremonyFacts(t, c)) != 0 || len(ceremonyFacts(t, a)) != 0 {
		t.Fatal("a device that did not send the message committed its facts")
	}
}

// A fact the journal would refuse fails the send before the guard chain:
// nothing is charged, no frame goes out, no fact (not even the good ones
// beside it) commits, and the session aborts with handler_failed everywhere.
func TestHandlerFactRefusedAbortsWithoutCharge(t *testing.T) {
	a, b, c := trio(t)
	group := found(t, b, core.NamespaceContext, otherSigner(), b.signer)
	foreign := found(t, b, core.NamespaceContext, otherSigner()) // known to B, B not a member
	good := journal.Draft{Namespace: group, TypeID: typeCeremony, Payload: []byte("commit")}
	tests := []struct {
		name  string
		bad   journal.Draft
		extra int // more good facts than the limit allows, instead of bad
	}{
		{name: "not a member", bad: journal.Draft{Namespace: foreign, TypeID: typeCeremony, Payload: []byte("commit")}},
		{name: "unknown namespace", bad: journal.Draft{Namespace: core.Namespace{Kind: core.NamespaceContext, ID: core.Hash{9}}, TypeID: typeCeremony, Payload: []byte("commit")}},
		{name: "validator refuses", bad: journal.Draft{Namespace: group, TypeID: typeCeremony, Payload: []byte("maybe")}},
		{name: "reserved type unknown", bad: journal.Draft{Namespace: group, TypeID: "aura.nope/v1", Payload: []byte("x")}},
		{name: "lamport set by the handler", bad: journal.Draft{Namespace: group, TypeID: typeCeremony, Payload: []byte("commit"), Lamport: 99}},
		{name: "too many facts", extra: 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drafts := []journal.Draft{good, tt.bad}
			if tt.extra > 0 {
				drafts = make([]journal.Draft, tt.extra)
				for i := range drafts {
					drafts[i] = good
				}
			}
			if err := b.rt.Register("Costly", "B", &facter{label: "Fwd1", drafts: drafts}); err != nil {
				t.Fatal(err)
			}
			s, err := a.rt.Run(context.Background(), "Costly", abc(a, b, c), session.StartOptions{})
			if !errors.Is(err, session.ErrSessionAborted) {
				t.Fatalf("run: %v", err)
			}
			gb := waitSession(t, b, s.ID)
			wantAbort(t, gb, session.AbortHandler)
			if gb.Reason.Remote || gb.Steps != 1 {
				t.Fatalf("B: steps %d, reason %+v; want B's own reason after receiving Req only", gb.Steps, gb.Reason)
			}
			ga := waitSession(t, a, s.ID)
			wantAbort(t, ga, session.AbortHandler)
			if !ga.Reason.Remote || ga.Reason.By != "B" {
				t.Fatalf("A's reason: %+v", ga.Reason)
			}
			// C never got Fwd1: it has no record of the session, or one
			// with no step in it.
			if gc, err := c.rt.Get(s.ID); err == nil && gc.Steps != 0 {
				t.Fatalf("C received from B: %+v", gc)
			} else if err != nil && !errors.Is(err, core.ErrNotFound) {
				t.Fatal(err)
			}
			if n := spentTo(t, b, c); n != 0 {
				t.Fatalf("B was charged %d for its sends to C", n)
			}
			if fs := ceremonyFacts(t, b); len(fs) != 0 {
				t.Fatalf("B committed %d ceremony facts", len(fs))
			}
			if sf := sessionFacts(t, b); len(sf) != 0 {
				t.Fatalf("B committed session facts: %+v", sf)
			}
		})
	}
}
