package session_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/choreo/protocols"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/session"
	"github.com/aura-p2p/aura/internal/transport"
)

// rnode is one device as aurad wires it: journal, budget ledger, transport
// with the member authorizer, and a session runtime. (The pattern of
// transport's own tests, copied rather than imported.)
type rnode struct {
	j      *journal.Journal
	l      *budget.Ledger
	tr     *transport.Transport
	authz  *transport.MemberAuthorizer
	dev    core.DeviceID
	signer *journal.KeySigner
	ns     core.Namespace
	rt     *session.Runtime
	opts   session.Options
}

type nodeConfig struct {
	policy      budget.Policy
	protos      []*choreo.Projection
	stepTimeout time.Duration
	noAllow     bool // the authorizer allows no session message type
	noRelay     bool
	sync        bool // fsync the journal, as aurad does (tests skip it)
}

func testProtocols(t testing.TB) []*choreo.Projection {
	t.Helper()
	ps, err := protocols.All()
	if err != nil {
		t.Fatal(err)
	}
	_, extra, err := choreo.Load([]byte(testSource))
	if err != nil {
		t.Fatal(err)
	}
	return append(ps, extra...)
}

// Protocols only the tests run.
const testSource = `
#[handler = "relay"]
protocol Costly {
    roles: A, B, C;
    A[flow_cost = 1] -> B: Req;
    B[flow_cost = 1, journal_facts = "fwd1"] -> C: Fwd1;
    B[flow_cost = 1, journal_facts = "fwd2"] -> C: Fwd2;
    C[flow_cost = 1] -> A: Resp;
}

#[handler = "relay"]
protocol Stream {
    roles: Src, Dst;
    rec Loop {
        choice at Src {
            Item: { Src[flow_cost = 1] -> Dst: Item(Data); continue Loop; }
            or Stop: { Src[flow_cost = 1] -> Dst: Stop; }
        }
    }
}

#[handler = "relay"]
protocol Late {
    roles: A, B, C;
    C[flow_cost = 1] -> A: Hello;
    A[flow_cost = 1] -> B: Req;
    B[flow_cost = 1] -> C: Done;
}
`

func defaultConfig(t testing.TB) nodeConfig {
	p := budget.DefaultPolicy()
	p.Flow.Link = 1 << 30
	return nodeConfig{policy: p, protos: testProtocols(t), stepTimeout: 20 * time.Second}
}

func newRNode(t testing.TB, cfg nodeConfig) *rnode {
	t.Helper()
	ctx := context.Background()
	validators := map[string]journal.Validator{}
	for k, v := range budget.Validators() {
		validators[k] = v
	}
	for k, v := range session.Validators() {
		validators[k] = v
	}
	validators[typeCeremony] = validateCeremony
	j, err := journal.Open(ctx, journal.Options{Path: filepath.Join(t.TempDir(), "j.db"), Validators: validators, NoSync: !cfg.sync})
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer := journal.NewKeySigner(key)
	g := journal.Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Members: []journal.Member{{Device: signer.DeviceID()}}}
	rand.Read(g.Nonce[:])
	payload, _ := g.Encode()
	ns := journal.NamespaceOf(core.NamespaceAuthority, payload)
	if _, _, err := j.AppendLocal(ctx, signer, journal.Draft{Namespace: ns, TypeID: journal.TypeGenesis, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	l, err := budget.Open(ctx, j, budget.Config{Policy: cfg.policy, EpochDuration: time.Hour, AuditNamespace: ns}, signer, core.SystemClock{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	authz := transport.NewMemberAuthorizer(signer.DeviceID(), j)
	tr, err := transport.Start(ctx, key, transport.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}},
		transport.Options{Authorizer: authz, Charger: l.Charger(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	n := &rnode{j: j, l: l, tr: tr, authz: authz, dev: signer.DeviceID(), signer: signer, ns: ns}
	n.opts = session.Options{
		Transport: tr, Journal: j, Signer: signer, Namespace: ns, Protocols: cfg.protos,
		Logger: zaptest.NewLogger(t), StepTimeout: cfg.stepTimeout,
	}
	if !cfg.noAllow {
		n.opts.Authorizer = authz
	}
	n.rt, err = session.New(ctx, n.opts)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.noRelay {
		n.rt.RegisterRelay()
	}
	t.Cleanup(func() {
		n.rt.Close()
		tr.Shutdown()
		j.Close()
	})
	return n
}

func connect(t testing.TB, a, b *rnode) {
	t.Helper()
	d, addr, err := transport.ParsePeerAddr(b.tr.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := a.tr.Connect(context.Background(), d, addr); err != nil {
		t.Fatal(err)
	}
}

func mesh(t testing.TB, ns ...*rnode) {
	for i := range ns {
		for j := i + 1; j < len(ns); j++ {
			connect(t, ns[i], ns[j])
		}
	}
}

func trio(t testing.TB, cfgs ...nodeConfig) (a, b, c *rnode) {
	var ns []*rnode
	for i := range 3 {
		cfg := defaultConfig(t)
		if i < len(cfgs) {
			cfg = cfgs[i]
		}
		ns = append(ns, newRNode(t, cfg))
	}
	mesh(t, ns...)
	return ns[0], ns[1], ns[2]
}

func abc(a, b, c *rnode) map[string]core.DeviceID {
	return map[string]core.DeviceID{"A": a.dev, "B": b.dev, "C": c.dev}
}

// waitSession waits until n knows session id and it has ended.
func waitSession(t testing.TB, n *rnode, id session.SessionID) session.Session {
	t.Helper()
	w := n.rt.Watch(context.Background())
	defer w.Close()
	deadline := time.After(30 * time.Second)
	for {
		if s, err := n.rt.Get(id); err == nil && s.Done() {
			return s
		}
		select {
		case _, ok := <-w.C():
			if !ok {
				w = n.rt.Watch(context.Background())
			}
		case <-deadline:
			s, err := n.rt.Get(id)
			t.Fatalf("session %s on %s did not end: %+v %v", id, n.dev, s, err)
		}
	}
}

// wantAborted waits until n's record of session id says aborted with code:
// a peer's abort may reach a device after its own part completed.
func wantAborted(t testing.TB, n *rnode, id session.SessionID, code session.AbortCode) {
	t.Helper()
	waitSession(t, n, id)
	w := n.rt.Watch(context.Background())
	defer w.Close()
	deadline := time.After(30 * time.Second)
	for {
		s, _ := n.rt.Get(id)
		if s.State == session.StateAborted {
			wantAbort(t, s, code)
			return
		}
		select {
		case <-w.C():
		case <-deadline:
			t.Fatalf("session %s on role %s: %s, want aborted with %s", id, s.Role, s.State, code)
		}
	}
}

func wantAbort(t testing.TB, s session.Session, code session.AbortCode) {
	t.Helper()
	if s.State != session.StateAborted || s.Reason == nil || s.Reason.Code != code {
		t.Fatalf("session on role %s: state %s reason %v, want aborted with %s", s.Role, s.State, s.Reason, code)
	}
	if !errors.Is(s.Reason, session.ErrSessionAborted) || !errors.Is(s.Reason, core.ErrAborted) {
		t.Fatalf("reason %v does not wrap the sentinels", s.Reason)
	}
}

// sessionFacts lists the choreo facts a node committed.
func sessionFacts(t testing.TB, n *rnode) []*session.SessionFact {
	t.Helper()
	fs, _, err := n.j.List(context.Background(), journal.ListQuery{TypeID: session.TypeFact, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []*session.SessionFact
	for _, f := range fs {
		sf, err := session.DecodeSessionFact(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sf)
	}
	return out
}

// A three-role session completes on three nodes; the annotated fact is
// committed by the sender, and every node logs its steps.
func TestThreeRoleSessionCompletes(t *testing.T) {
	a, b, c := trio(t)
	ctx := context.Background()
	s, err := a.rt.Run(ctx, "Relay", abc(a, b, c), session.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.State != session.StateCompleted || s.Steps != 2 || !s.Initiator || s.Role != "A" {
		t.Fatalf("initiator: %+v", s)
	}
	for _, n := range []*rnode{b, c} {
		got := waitSession(t, n, s.ID)
		if got.State != session.StateCompleted || got.Steps != 2 || got.Initiator {
			t.Fatalf("participant: %+v", got)
		}
	}
	if got := waitSession(t, b, s.ID); got.Log[0].Dir != session.StepReceived || got.Log[0].Label != "Req" || got.Log[1].Label != "Fwd" {
		t.Fatalf("B's log: %+v", got.Log)
	}
	fs := sessionFacts(t, b)
	if len(fs) != 1 || fs[0].Fact != "relay_forwarded" || fs[0].Session != s.ID || fs[0].Role != "B" || fs[0].Label != "Fwd" {
		t.Fatalf("B's facts: %+v", fs)
	}
	if len(sessionFacts(t, a)) != 0 || len(sessionFacts(t, c)) != 0 {
		t.Fatal("facts committed by a device that did not send the annotated message")
	}
	// The loop, going round twice on the starter's choices.
	s, err = a.rt.Run(ctx, "RelayLoop", abc(a, b, c), session.StartOptions{Choices: []string{"More", "More", "Stop"}})
	if err != nil {
		t.Fatal(err)
	}
	// A: 2 × (Req, Resp) + Done.
	if s.Steps != 5 || s.Log[4].Branch != "Stop" {
		t.Fatalf("loop: %+v", s)
	}
	if got := waitSession(t, c, s.ID); got.State != session.StateCompleted || got.Steps != 5 {
		t.Fatalf("C in the loop: %+v", got)
	}
	// A choice that is not a branch there is the handler failing.
	s, err = a.rt.Run(ctx, "RelayLoop", abc(a, b, c), session.StartOptions{Choices: []string{"Sideways"}})
	if !errors.Is(err, session.ErrSessionAborted) {
		t.Fatalf("bad choice: %v", err)
	}
	wantAbort(t, s, session.AbortHandler)
	// A role whose part starts with a send joins through a join message.
	s, err = a.rt.Run(ctx, "Late", abc(a, b, c), session.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitSession(t, c, s.ID); got.State != session.StateCompleted {
		t.Fatalf("late joiner: %+v", got)
	}
	// Listing shows the newest first.
	if l := a.rt.List(); len(l) != 4 || l[0].ID != s.ID || l[0].Log != nil {
		t.Fatalf("list: %+v", l)
	}
}

func TestStartRefusesBadRoleMaps(t *testing.T) {
	a, b, c := trio(t)
	ctx := context.Background()
	for _, roles := range []map[string]core.DeviceID{
		{"A": a.dev, "B": b.dev},                          // C missing
		{"A": a.dev, "B": b.dev, "C": b.dev},              // one device, two roles
		{"A": c.dev, "B": b.dev, "C": {1}},                // self plays nothing
		{"A": a.dev, "B": b.dev, "C": c.dev, "D": {9, 9}}, // unknown role
	} {
		if _, err := a.rt.Start(ctx, "Relay", roles, session.StartOptions{}); !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%v: %v", roles, err)
		}
	}
	if _, err := a.rt.Start(ctx, "Nope", abc(a, b, c), session.StartOptions{}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("unknown protocol: %v", err)
	}
	// Ping has no handler here.
	if _, err := a.rt.Start(ctx, "Ping", map[string]core.DeviceID{"Pinger": a.dev, "Responder": b.dev}, session.StartOptions{}); !errors.Is(err, core.ErrFailedPrecondition) {
		t.Errorf("no handler: %v", err)
	}
}

// gate is a handler whose sends (of one label) wait until released, so a
// test can act while a session is at a known point.
type gate struct {
	session.Relay
	label   string
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate(label string) *gate {
	return &gate{label: label, reached: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) Send(ctx context.Context, s session.Info, a choreo.Action) ([]byte, []journal.Draft, error) {
	if a.Label == g.label {
		g.once.Do(func() { close(g.reached) })
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	return g.Relay.Send(ctx, s, a)
}

func (g *gate) wait(t testing.TB) {
	t.Helper()
	select {
	case <-g.reached:
	case <-time.After(30 * time.Second):
		t.Fatal("gate not reached")
	}
}

// A message with a label the receiver's local type does not allow next
// aborts the session on every participant with the violation reason.
func TestUnexpectedMessageAbortsEverywhere(t *testing.T) {
	a, b, c := trio(t)
	g := newGate("Resp")
	if err := c.rt.Register("Relay", "C", g); err != nil {
		t.Fatal(err)
	}
	s, err := a.rt.Start(context.Background(), "Relay", abc(a, b, c), session.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g.wait(t) // A waits for Resp from C; C holds it back
	// B (a participant) sends A a message as itself that A does not expect.
	raw := session.EncodeTestMsg(s.ID, "Bogus", "B", "A", nil)
	if err := b.tr.Send(context.Background(), transport.Message{
		Protocol: session.ProtocolSession, Context: core.LinkContext(b.dev, a.dev), To: a.dev, Type: session.TypeMsg, Cost: 1, Payload: raw,
	}); err != nil {
		t.Fatal(err)
	}
	got := waitSession(t, a, s.ID)
	wantAbort(t, got, session.AbortViolation)
	if got.Reason.Remote || got.Reason.By != "A" {
		t.Fatalf("A detected it: %+v", got.Reason)
	}
	// C was told, and its held send ended with the session.
	gc := waitSession(t, c, s.ID)
	wantAbort(t, gc, session.AbortViolation)
	if !gc.Reason.Remote || gc.Reason.By != "A" {
		t.Fatalf("C's reason: %+v", gc.Reason)
	}
	// B had finished its part before the violation; its record still ends
	// up saying the session failed, and why.
	wantAborted(t, b, s.ID, session.AbortViolation)
}

// A device claiming a role it does not play is refused: the session aborts
// with wrong_sender.
func TestMessageFromWrongDeviceAborts(t *testing.T) {
	a, b, c := trio(t)
	g := newGate("Resp")
	if err := c.rt.Register("Relay", "C", g); err != nil {
		t.Fatal(err)
	}
	s, err := a.rt.Start(context.Background(), "Relay", abc(a, b, c), session.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g.wait(t)
	// B forges C's Resp.
	raw := session.EncodeTestMsg(s.ID, "Resp", "C", "A", nil)
	if err := b.tr.Send(context.Background(), transport.Message{
		Protocol: session.ProtocolSession, Context: core.LinkContext(b.dev, a.dev), To: a.dev, Type: session.TypeMsg, Cost: 1, Payload: raw,
	}); err != nil {
		t.Fatal(err)
	}
	wantAbort(t, waitSession(t, a, s.ID), session.AbortWrongSender)
	wantAbort(t, waitSession(t, c, s.ID), session.AbortWrongSender)
}

// A header for a protocol the receiver does not have is refused, and every
// participant the header names hears why.
func TestJoinRefusals(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.noRelay = true // C has the protocols but no handler
	a, b, c := trio(t, defaultConfig(t), defaultConfig(t), cfg)
	s, err := a.rt.Start(context.Background(), "Relay", abc(a, b, c), session.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantAbort(t, waitSession(t, a, s.ID), session.AbortRefused)
	wantAborted(t, b, s.ID, session.AbortRefused)
	if _, err := c.rt.Get(s.ID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("C joined: %v", err)
	}

	// A protocol whose text differs on the other side: hash mismatch. It
	// names the same capability, so the claim passes D's capability step and
	// the session layer sees the header (TestUngrantedClaimIsDropped covers
	// a version that does not).
	_, ps, err := choreo.Load([]byte(`#[handler = "relay"] protocol Relay { roles: A, B, C; A[guard_capability = "demo:relay"] -> B: Req; B -> C: Fwd; C -> A: Resp; }`))
	if err != nil {
		t.Fatal(err)
	}
	dcfg := defaultConfig(t)
	dcfg.protos = ps
	d := newRNode(t, dcfg)
	mesh(t, a, d)
	s, err = a.rt.Start(context.Background(), "Relay", map[string]core.DeviceID{"A": a.dev, "B": d.dev, "C": c.dev}, session.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantAbort(t, waitSession(t, a, s.ID), session.AbortUnknownProtocol)
}

// A participant that stays silent past the step timeout ends the session
// with timeout on every participant still running it.
func TestStepTimeout(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.stepTimeout = 300 * time.Millisecond
	a, b, c := trio(t, cfg, cfg, cfg)
	g := newGate("Resp") // never released
	if err := c.rt.Register("Relay", "C", g); err != nil {
		t.Fatal(err)
	}
	s, err := a.rt.Run(context.Background(), "Relay", abc(a, b, c), session.StartOptions{})
	if !errors.Is(err, session.ErrSessionAborted) {
		t.Fatalf("run: %v", err)
	}
	wantAbort(t, s, session.AbortTimeout)
	wantAbort(t, waitSession(t, c, s.ID), session.AbortTimeout)
	// B's part was over before A gave up; its record follows.
	wantAborted(t, b, s.ID, session.AbortTimeout)
}

// Cancelling the caller's context aborts the session, and the peers learn it.
func TestCancelAborts(t *testing.T) {
	a, b, c := trio(t)
	g := newGate("Resp")
	if err := c.rt.Register("Relay", "C", g); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { g.wait(t); cancel() }()
	s, err := a.rt.Run(ctx, "Relay", abc(a, b, c), session.StartOptions{})
	if !errors.Is(err, session.ErrSessionAborted) {
		t.Fatalf("run: %v", err)
	}
	wantAbort(t, s, session.AbortCancelled)
	wantAbort(t, waitSession(t, c, s.ID), session.AbortCancelled)
}

// A peer that vanishes makes the next send to it fail: the sender aborts
// with peer_unreachable and tells those it can still reach.
func TestPeerVanishes(t *testing.T) {
	a, b, c := trio(t)
	g := newGate("Fwd")
	if err := b.rt.Register("Relay", "B", g); err != nil {
		t.Fatal(err)
	}
	s, err := a.rt.Start(context.Background(), "Relay", abc(a, b, c), session.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g.wait(t)
	c.rt.Close()
	c.tr.Shutdown()
	// A write can succeed locally until B's host notices the connection is
	// gone; vanishing means B knows, so wait for that.
	for deadline := time.Now().Add(10 * time.Second); ; {
		ps, err := b.tr.Peers(context.Background(), b.j)
		if err != nil {
			t.Fatal(err)
		}
		connected := false
		for _, p := range ps {
			connected = connected || (p.Device == c.dev && p.Connected)
		}
		if !connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B still sees C connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(g.release)
	wantAbort(t, waitSession(t, b, s.ID), session.AbortUnreachable)
	ga := waitSession(t, a, s.ID)
	wantAbort(t, ga, session.AbortUnreachable)
	if !ga.Reason.Remote || ga.Reason.By != "B" {
		t.Fatalf("A's reason: %+v", ga.Reason)
	}
}

// A budget refusal mid-session aborts it everywhere, and the fact of the
// refused step is not committed while the one before it is.
func TestBudgetRefusalAbortsWithoutHalfCommittedFacts(t *testing.T) {
	tight := defaultConfig(t)
	tight.policy.Flow.Link = 1
	a, b, c := trio(t, defaultConfig(t), tight, defaultConfig(t))
	s, err := a.rt.Run(context.Background(), "Costly", abc(a, b, c), session.StartOptions{})
	if !errors.Is(err, session.ErrSessionAborted) {
		t.Fatalf("run: %v", err)
	}
	wantAbort(t, s, session.AbortBudget)
	wantAbort(t, waitSession(t, b, s.ID), session.AbortBudget)
	wantAbort(t, waitSession(t, c, s.ID), session.AbortBudget)
	fs := sessionFacts(t, b)
	if len(fs) != 1 || fs[0].Fact != "fwd1" {
		t.Fatalf("B's facts: %+v", fs)
	}
	e, err := b.l.Get(context.Background(), budget.Key{Context: core.LinkContext(b.dev, c.dev), Peer: c.dev})
	if err != nil || e.State.Spent != 1 {
		t.Fatalf("B's charge to C: %+v %v", e, err)
	}
}

// A message type the capability step does not allow stops the session
// before anything is charged.
func TestGuardDenial(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.noAllow = true
	a, b, c := trio(t, cfg)
	a.authz.Allow(session.TypeAbort, core.ClassLink)
	s, err := a.rt.Run(context.Background(), "Relay", abc(a, b, c), session.StartOptions{})
	if !errors.Is(err, session.ErrSessionAborted) {
		t.Fatalf("run: %v", err)
	}
	wantAbort(t, s, session.AbortGuardDenied)
	// Only the free abort messages went out.
	es, _ := a.l.List(context.Background())
	for _, e := range es {
		if e.State.Spent != 0 {
			t.Fatalf("a denied send was charged: %+v", e)
		}
	}
	// A context B is not a member of is refused as well.
	s, err = a.rt.Run(context.Background(), "Relay", abc(a, b, c), session.StartOptions{Context: core.ContextID{7}})
	if !errors.Is(err, session.ErrSessionAborted) {
		t.Fatalf("run: %v", err)
	}
	wantAbort(t, s, session.AbortGuardDenied)
}

// Sessions survive nothing across restarts: a runtime started on a journal
// whose records show a running session marks it aborted, and says why.
func TestRestartAbortsRunningSessions(t *testing.T) {
	a, b, c := trio(t)
	g := newGate("Resp")
	if err := c.rt.Register("Relay", "C", g); err != nil {
		t.Fatal(err)
	}
	s, err := a.rt.Start(context.Background(), "Relay", abc(a, b, c), session.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g.wait(t)
	// What a restarted daemon finds: the journal as the crash left it.
	rt2, err := session.New(context.Background(), a.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	got, err := rt2.Get(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantAbort(t, got, session.AbortRestarted)
	if got.Reason.Detail != "daemon restarted" || got.Ended.IsZero() {
		t.Fatalf("reason %+v", got.Reason)
	}
	// Completed sessions come back as they were (once B has recorded it).
	if _, err := b.rt.Wait(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	rt3, err := session.New(context.Background(), b.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rt3.Close()
	if got, err := rt3.Get(s.ID); err != nil || got.State != session.StateCompleted || got.Steps != 2 || len(got.Log) != 2 {
		t.Fatalf("B's record after restart: %+v %v", got, err)
	}
}

// Watchers see a session start, step and end, in order.
func TestWatch(t *testing.T) {
	a, b, c := trio(t)
	w := a.rt.Watch(context.Background())
	defer w.Close()
	s, err := a.rt.Run(context.Background(), "Relay", abc(a, b, c), session.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A's part: started, sent Req, received Resp, completed.
	type event struct {
		State string
		Steps int
	}
	want := []event{{"running", 0}, {"running", 1}, {"running", 2}, {"completed", 2}}
	var got []event
	for ev := range w.C() {
		if ev.ID != s.ID {
			continue
		}
		got = append(got, event{ev.State.String(), ev.Steps})
		if ev.Protocol != "Relay" || ev.Role != "A" || !ev.Initiator || ev.Log != nil {
			t.Errorf("event %d: protocol %q role %q initiator %v log %v, want Relay, A, initiator, no log", len(got), ev.Protocol, ev.Role, ev.Initiator, ev.Log)
		}
		if ev.Done() {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v (watch error %v)", got, want, w.Err())
	}
}

// The frame decoder tolerates a few non-canonical forms (a zero field written
// out, roles in any order), so arbitrary input is checked by a decode, encode,
// decode round trip: the same fields, and byte-identical re-encodings. The
// seeds are the encoder's own output and must come back byte for byte.
func FuzzDecodeFrame(f *testing.F) {
	id := session.SessionID{7}
	seeds := [][]byte{
		session.EncodeTestMsg(id, "Req", "A", "B", nil),
		session.EncodeTestMsg(id, "Req", "A", "B", &session.Session{Protocol: "Relay", Roles: map[string]core.DeviceID{"A": {1}, "B": {2}}, Choices: []string{"x"}}),
		session.EncodeTestMsg(id, "Fwd", "B", "C", &session.Session{Protocol: "Relay", Hash: core.Hash{3}, Context: core.ContextID{4}, Roles: map[string]core.DeviceID{"A": {1}, "B": {2}, "C": {5}}, Choices: []string{"x", "y"}}),
	}
	for _, s := range seeds {
		if enc, _, err := session.ReencodeTestFrame(s); err != nil || !bytes.Equal(enc, s) {
			f.Fatalf("encoder output does not round-trip: %v\n%x\n%x", err, s, enc)
		}
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = session.DecodeTestFrame(b)
		enc, desc, err := session.ReencodeTestFrame(b)
		if err != nil {
			return
		}
		again, desc2, err := session.ReencodeTestFrame(enc)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if desc2 != desc {
			t.Fatalf("round trip changed the frame:\n%s\n%s", desc, desc2)
		}
		if !bytes.Equal(again, enc) {
			t.Fatal("re-encoding differs")
		}
	})
}
