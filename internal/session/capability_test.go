package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/session"
	"github.com/aura-p2p/aura/internal/transport"
)

// annotatedCapabilities lists the guard_capability of every message of p,
// read from the global protocol rather than the projections the runtime walks.
func annotatedCapabilities(stmts []choreo.Stmt, into map[string]bool) {
	for _, s := range stmts {
		switch s := s.(type) {
		case *choreo.MessageStmt:
			if s.Ann.GuardCapability != "" {
				into[s.Ann.GuardCapability] = true
			}
		case *choreo.ChoiceStmt:
			for _, b := range s.Branches {
				annotatedCapabilities(b.Body, into)
			}
		case *choreo.RecStmt:
			annotatedCapabilities(s.Body, into)
		}
	}
}

// Until capability tokens arrive, membership grants every capability the
// runtime's protocols name, and nothing else: session messages claiming one
// pass the capability step both ways, a claim of any other is refused.
func TestProtocolCapabilitiesAreGranted(t *testing.T) {
	cfg := defaultConfig(t)
	a, b := newRNode(t, cfg), newRNode(t, cfg)
	want := map[string]bool{}
	for _, p := range cfg.protos {
		annotatedCapabilities(p.Protocol.Body, want)
	}
	for _, c := range []string{"demo:relay", "transport:ping", "consensus:witness", "guardian:accept", "epoch:confirm"} {
		if !want[c] {
			t.Fatalf("embedded protocols no longer name %s; the test needs new examples", c)
		}
	}
	ctx := context.Background()
	link := core.LinkContext(a.dev, b.dev)
	for c := range want {
		if _, err := a.authz.Authorize(ctx, link, b.dev, session.TypeMsg, transport.Claim{Capability: c}); err != nil {
			t.Errorf("send claiming %s: %v", c, err)
		}
		if _, err := b.authz.AuthorizeIncoming(ctx, link, a.dev, session.TypeMsg, transport.Claim{Capability: c}); err != nil {
			t.Errorf("receipt of a claim of %s: %v", c, err)
		}
	}
	for _, typ := range []string{session.TypeMsg, session.TypeJoin, session.TypeAbort} {
		if _, err := a.authz.Authorize(ctx, link, b.dev, typ, transport.Claim{Capability: "admin:everything"}); !errors.Is(err, transport.ErrCapabilityDenied) {
			t.Errorf("%s claiming a capability no protocol names: %v", typ, err)
		}
	}
	// Join and abort messages claim nothing, so they are granted nothing.
	if _, err := a.authz.Authorize(ctx, link, b.dev, session.TypeJoin, transport.Claim{Capability: "demo:relay"}); !errors.Is(err, transport.ErrCapabilityDenied) {
		t.Errorf("join claiming demo:relay: %v", err)
	}
}

// A peer whose protocols do not name a capability does not grant it: a
// session message claiming it is dropped by that peer's transport and
// counted, before the session layer sees it.
func TestUngrantedClaimIsDropped(t *testing.T) {
	a := newRNode(t, defaultConfig(t))
	_, ps, err := choreo.Load([]byte(`#[handler = "relay"] protocol Relay { roles: A, B, C; A -> B: Req; B -> C: Fwd; C -> A: Resp; }`))
	if err != nil {
		t.Fatal(err)
	}
	dcfg := defaultConfig(t)
	dcfg.protos = ps
	d := newRNode(t, dcfg)
	c := newRNode(t, defaultConfig(t))
	mesh(t, a, d, c)
	s, err := a.rt.Start(context.Background(), "Relay", map[string]core.DeviceID{"A": a.dev, "B": d.dev, "C": c.dev}, session.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for d.tr.Stats().Dropped[transport.DropCapabilityDenied] == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("claim not dropped: %+v", d.tr.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := d.rt.Get(s.ID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("D joined a session whose claim it refused: %v", err)
	}
	if err := a.rt.Abort(s.ID, "test over"); err != nil {
		t.Fatal(err)
	}
}
