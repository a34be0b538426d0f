package ceremony

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

type fakeNetwork struct{}

func (fakeNetwork) Addrs() []string                       { return []string{"/ip4/127.0.0.1/tcp/4001"} }
func (fakeNetwork) AddPeer(context.Context, string) error { return nil }

// device is a service on a real journal in a temp dir. Its
// sessions run in process against a peer's handlers (pair_test.go), or
// nowhere.
type device struct {
	s     *Service
	j     *journal.Journal
	path  string
	seed  byte
	key   ed25519.PrivateKey
	ns    core.Namespace
	clock *core.ManualClock
	sess  *loopSessions
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func openJournal(t *testing.T, path string, clock core.Clock) *journal.Journal {
	t.Helper()
	j, err := journal.Open(context.Background(), journal.Options{Path: path, Clock: clock, Logger: zaptest.NewLogger(t),
		Reducers: []journal.Reducer{Reducer()}, Validators: Validators()})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func newInviter(t *testing.T) *device { return newDevice(t, 1) }

func newDevice(t *testing.T, seed byte) *device {
	t.Helper()
	ctx := context.Background()
	iv := &device{path: filepath.Join(t.TempDir(), "journal.db"), seed: seed, key: seededKey(seed), clock: core.NewManualClock(t0)}
	iv.j = openJournal(t, iv.path, iv.clock)
	signer := journal.NewKeySigner(iv.key)
	g := journal.Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Members: []journal.Member{{Device: signer.DeviceID()}}}
	p, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	iv.ns = journal.NamespaceOf(core.NamespaceAuthority, p)
	if _, _, err := iv.j.AppendLocal(ctx, signer, journal.Draft{Namespace: iv.ns, TypeID: journal.TypeGenesis, Payload: p}); err != nil {
		t.Fatal(err)
	}
	iv.s = iv.start(t)
	t.Cleanup(func() { iv.j.Close() })
	return iv
}

func (iv *device) start(t *testing.T) *Service {
	t.Helper()
	priv, pub := seededHPKE(t, iv.seed)
	var peer *loopSessions
	if iv.sess != nil {
		peer = iv.sess.peer
	}
	iv.sess = &loopSessions{dev: iv, peer: peer}
	s, err := New(context.Background(), Options{
		Journal: iv.j, Sessions: iv.sess, Network: fakeNetwork{}, Signer: journal.NewKeySigner(iv.key),
		DeviceKey: iv.key, HPKE: priv, HPKEPub: pub, Authority: core.AuthorityID{0xa0 + iv.seed}, Namespace: iv.ns,
		Clock: iv.clock, Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// restart closes the journal and opens the service again on the same file.
func (iv *device) restart(t *testing.T) {
	t.Helper()
	if err := iv.j.Close(); err != nil {
		t.Fatal(err)
	}
	iv.j = openJournal(t, iv.path, iv.clock)
	iv.s = iv.start(t)
}

func (iv *device) invite(t *testing.T) *InvitationRecord {
	t.Helper()
	rec, code, err := iv.s.Invite(context.Background(), time.Hour, "hi")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ParseCode(code); err != nil || c.ID != rec.ID || c.Secret != rec.Secret {
		t.Fatalf("code of the invitation: %+v, %v", c, err)
	}
	return rec
}

// acceptance builds what an invitee device sends, and the inviter's
// decision for it, as the inviter's Receive does. With the wrong secret the
// proof does not hold.
func (iv *device) acceptance(t *testing.T, rec *InvitationRecord, invitee byte, secret [32]byte, label string) (*decision, core.DeviceID) {
	t.Helper()
	dev := deviceOf(seededKey(100 + invitee))
	_, hpkePub := seededHPKE(t, 100+invitee)
	acc := &acceptance{Invitation: rec.ID, Authority: core.AuthorityID{0xbb, invitee}}
	copy(acc.HPKE[:], hpkePub)
	acc.Nonce[0], acc.Nonce[1] = invitee, 0x5a
	acc.Proof = proof(secret, label, dev, acc)
	pre := prestate(iv.s.self, iv.s.o.Authority, acc.Invitation, dev, acc.Authority)
	return &decision{acc: acc, rec: &Record{
		ID: ceremonyID(pre, OperationContact, acc.Nonce), Operation: OperationContact, Role: RoleInviter,
		Peer: dev, Invitation: acc.Invitation, State: CeremonyRunning, Started: iv.clock.Now(),
	}}, dev
}

// renonce makes d a new attempt by the same device: a fresh nonce, so a new
// ceremony id.
func (iv *device) renonce(d *decision, dev core.DeviceID, secret [32]byte, label string) {
	d.acc.Nonce[2]++
	d.acc.Proof = proof(secret, label, dev, d.acc)
	pre := prestate(iv.s.self, iv.s.o.Authority, d.acc.Invitation, dev, d.acc.Authority)
	d.rec.ID = ceremonyID(pre, OperationContact, d.acc.Nonce)
}

// factsOf counts the journal's facts of a type (in any namespace).
func (iv *device) factsOf(t *testing.T, typeID string) []journal.StoredFact {
	t.Helper()
	var out []journal.StoredFact
	q := journal.ListQuery{TypeID: typeID, PageSize: 100}
	for {
		page, next, err := iv.j.List(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		q.PageToken = next
	}
}

func (iv *device) contextGeneses(t *testing.T) int {
	n := 0
	for _, f := range iv.factsOf(t, journal.TypeGenesis) {
		if f.Namespace.Kind == core.NamespaceContext {
			n++
		}
	}
	return n
}

// One invitation, many resolutions at once: cancels and acceptances from
// different devices race; exactly one wins, every other is told the
// invitation is no longer pending, and the journal holds the winner's facts
// only.
func TestSingleResolution(t *testing.T) {
	iv := newInviter(t)
	ctx := context.Background()
	const rounds, cancels, accepts = 12, 3, 3
	for round := range rounds {
		rec := iv.invite(t)
		type outcome struct {
			cancel bool
			d      *decision
			dev    core.DeviceID
			err    error
		}
		out := make([]outcome, cancels+accepts)
		for i := range accepts {
			d, dev := iv.acceptance(t, rec, byte(i+1), rec.Secret, labelAccept)
			if err := iv.s.saveRecord(ctx, d.rec); err != nil {
				t.Fatal(err)
			}
			out[cancels+i] = outcome{d: d, dev: dev}
		}
		for i := range cancels {
			out[i].cancel = true
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range out {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Let cancels (the cheaper path) start late in some rounds,
				// so that both kinds of winner occur.
				if out[i].cancel {
					for range round % 4 * 50 {
						runtime.Gosched()
					}
				}
				if out[i].cancel {
					_, out[i].err = iv.s.Cancel(ctx, rec.ID)
				} else {
					out[i].err = iv.s.decide(ctx, out[i].d, out[i].dev)
				}
			}()
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, o := range out {
			if o.err == nil {
				if winner >= 0 {
					t.Fatalf("round %d: both %d and %d resolved the invitation", round, winner, i)
				}
				winner = i
				continue
			}
			if !errors.Is(o.err, ErrNotPending) {
				t.Fatalf("round %d: loser %d got %v, want ErrNotPending", round, i, o.err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody resolved the invitation", round)
		}
		got, err := iv.s.Invitation(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		w := out[winner]
		if w.cancel {
			if got.State != InvitationCancelled || got.Context != (core.ContextID{}) || got.Invitee != (core.DeviceID{}) {
				t.Fatalf("round %d: cancel won but the record is %+v", round, got)
			}
		} else if got.State != InvitationAccepted || got.Invitee != w.dev || got.Ceremony != w.d.rec.ID || got.Context != w.d.rec.Context || got.Genesis == (core.FactID{}) || got.Commit == (core.FactID{}) {
			t.Fatalf("round %d: acceptance %d won but the record is %+v (decision %+v)", round, winner, got, w.d.rec)
		}
	}
	// Across all rounds: one commit and one context per accepted invitation,
	// one abort per cancelled one, and nothing from the losers.
	invs, err := iv.s.Invitations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	accepted, cancelled := 0, 0
	for _, r := range invs {
		switch r.State {
		case InvitationAccepted:
			accepted++
		case InvitationCancelled:
			cancelled++
		default:
			t.Fatalf("invitation left %s", r.State)
		}
	}
	if n := len(iv.factsOf(t, TypeCommit)); n != accepted {
		t.Fatalf("%d commit facts for %d accepted invitations", n, accepted)
	}
	if n := iv.contextGeneses(t); n != accepted {
		t.Fatalf("%d contexts for %d accepted invitations", n, accepted)
	}
	if n := len(iv.factsOf(t, TypeAbort)); n != cancelled {
		t.Fatalf("%d abort facts for %d cancelled invitations", n, cancelled)
	}
	cs, err := iv.s.Contacts(ctx)
	if err != nil || len(cs) != accepted {
		t.Fatalf("%d contacts for %d accepted invitations (%v)", len(cs), accepted, err)
	}
	t.Logf("%d rounds: %d accepted, %d cancelled", rounds, accepted, cancelled)
}

// A resolved invitation stays as it was resolved.
func TestTerminalStatesImmutable(t *testing.T) {
	ctx := context.Background()
	t.Run("cancelled", func(t *testing.T) {
		iv := newInviter(t)
		rec := iv.invite(t)
		if _, err := iv.s.Cancel(ctx, rec.ID); err != nil {
			t.Fatal(err)
		}
		d, dev := iv.acceptance(t, rec, 1, rec.Secret, labelAccept)
		if err := iv.s.decide(ctx, d, dev); !errors.Is(err, ErrNotPending) {
			t.Fatalf("accept after cancel: %v", err)
		}
		if _, err := iv.s.Cancel(ctx, rec.ID); !errors.Is(err, ErrNotPending) {
			t.Fatalf("second cancel: %v", err)
		}
		dd, ddev := iv.acceptance(t, rec, 2, rec.Secret, labelDecline)
		if err := iv.s.takeDecline(ctx, dd, ddev); err != nil {
			t.Fatal(err)
		}
		if dd.rec.State != CeremonyAborted || dd.rec.Reason != ReasonAlreadyResolved {
			t.Fatalf("decline after cancel recorded as %+v", dd.rec)
		}
		got, err := iv.s.Invitation(ctx, rec.ID)
		if err != nil || got.State != InvitationCancelled {
			t.Fatalf("invitation after cancel: %+v, %v", got, err)
		}
		if n := len(iv.factsOf(t, TypeCommit)); n != 0 {
			t.Fatalf("%d commits after a cancel", n)
		}
	})
	t.Run("accepted", func(t *testing.T) {
		iv := newInviter(t)
		rec := iv.invite(t)
		d, dev := iv.acceptance(t, rec, 1, rec.Secret, labelAccept)
		if err := iv.s.decide(ctx, d, dev); err != nil {
			t.Fatal(err)
		}
		before, err := iv.s.Invitation(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := iv.s.Cancel(ctx, rec.ID); !errors.Is(err, ErrNotPending) {
			t.Fatalf("cancel after accept: %v", err)
		}
		// The same device again, and another one, with the right secret.
		for _, n := range []byte{1, 2} {
			d2, dev2 := iv.acceptance(t, rec, n, rec.Secret, labelAccept)
			iv.renonce(d2, dev2, rec.Secret, labelAccept) // a new attempt
			if err := iv.s.decide(ctx, d2, dev2); !errors.Is(err, ErrNotPending) {
				t.Fatalf("second accept by invitee %d: %v", n, err)
			}
		}
		dd, ddev := iv.acceptance(t, rec, 1, rec.Secret, labelDecline)
		if err := iv.s.takeDecline(ctx, dd, ddev); err != nil {
			t.Fatal(err)
		}
		after, err := iv.s.Invitation(ctx, rec.ID)
		if err != nil || after.encode() == nil || string(after.encode()) != string(before.encode()) {
			t.Fatalf("invitation changed after its acceptance: %+v -> %+v (%v)", before, after, err)
		}
		if n := len(iv.factsOf(t, TypeCommit)); n != 1 {
			t.Fatalf("%d commits, want 1", n)
		}
		if n := iv.contextGeneses(t); n != 1 {
			t.Fatalf("%d contexts, want 1", n)
		}
	})
}

// The same acceptance received twice (a replay, or a retry that reused its
// nonce) names the same ceremony, so the same context: the second is told
// the invitation is resolved, like any other late answer.
func TestReplayedAcceptance(t *testing.T) {
	ctx := context.Background()
	iv := newInviter(t)
	rec := iv.invite(t)
	d, dev := iv.acceptance(t, rec, 1, rec.Secret, labelAccept)
	if err := iv.s.decide(ctx, d, dev); err != nil {
		t.Fatal(err)
	}
	again, _ := iv.acceptance(t, rec, 1, rec.Secret, labelAccept)
	iv.clock.Advance(time.Second)
	if err := iv.s.decide(ctx, again, dev); !errors.Is(err, ErrNotPending) {
		t.Fatalf("replayed acceptance: %v, want ErrNotPending", err)
	}
}

// An acceptance that does not prove the secret is refused and leaves
// nothing: no context, no commit, no contact, no root; the invitation is
// still pending and can still be accepted by its real invitee.
func TestDecideWrongProof(t *testing.T) {
	ctx := context.Background()
	iv := newInviter(t)
	rec := iv.invite(t)
	wrong := rec.Secret
	wrong[0] ^= 1
	for _, tc := range []struct {
		name  string
		build func() (*decision, core.DeviceID)
	}{
		{"wrong secret", func() (*decision, core.DeviceID) { return iv.acceptance(t, rec, 1, wrong, labelAccept) }},
		{"decline proof used to accept", func() (*decision, core.DeviceID) { return iv.acceptance(t, rec, 1, rec.Secret, labelDecline) }},
		{"proof made for another device", func() (*decision, core.DeviceID) {
			d, _ := iv.acceptance(t, rec, 1, rec.Secret, labelAccept)
			return d, deviceOf(seededKey(102))
		}},
		{"proof for another hpke key", func() (*decision, core.DeviceID) {
			d, dev := iv.acceptance(t, rec, 1, rec.Secret, labelAccept)
			d.acc.HPKE[0] ^= 1
			return d, dev
		}},
		{"proof for another authority", func() (*decision, core.DeviceID) {
			d, dev := iv.acceptance(t, rec, 1, rec.Secret, labelAccept)
			d.acc.Authority[0] ^= 1
			return d, dev
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, dev := tc.build()
			if err := iv.s.decide(ctx, d, dev); !errors.Is(err, core.ErrPermissionDenied) {
				t.Fatalf("decide = %v, want ErrPermissionDenied", err)
			}
			if reasonOf(fmt.Errorf("x: %w", core.ErrPermissionDenied)) != ReasonBadProof {
				t.Fatal("a bad proof is not reported as bad_proof")
			}
			got, err := iv.s.Invitation(ctx, rec.ID)
			if err != nil || got.State != InvitationPending || !got.Resolved.IsZero() {
				t.Fatalf("invitation after a refused accept: %+v, %v", got, err)
			}
			if n, c := iv.contextGeneses(t), len(iv.factsOf(t, TypeCommit)); n != 0 || c != 0 {
				t.Fatalf("%d contexts and %d commits after a refused accept", n, c)
			}
			if cs, err := iv.s.Contacts(ctx); err != nil || len(cs) != 0 {
				t.Fatalf("contacts after a refused accept: %+v, %v", cs, err)
			}
			var roots int
			if err := iv.s.view(ctx, subRoots, func(b *journal.ExtStore) error {
				return b.ForEach(func(_, _ []byte) error { roots++; return nil })
			}); err != nil || roots != 0 {
				t.Fatalf("%d root secrets stored after a refused accept (%v)", roots, err)
			}
		})
	}
	// The real invitee still can.
	d, dev := iv.acceptance(t, rec, 1, rec.Secret, labelAccept)
	if err := iv.s.decide(ctx, d, dev); err != nil {
		t.Fatalf("accept after refused attempts: %v", err)
	}
}

// A decline that does not prove the secret leaves the invitation pending.
func TestDeclineWrongProof(t *testing.T) {
	ctx := context.Background()
	iv := newInviter(t)
	rec := iv.invite(t)
	wrong := rec.Secret
	wrong[5] ^= 1
	d, dev := iv.acceptance(t, rec, 1, wrong, labelDecline)
	if err := iv.s.takeDecline(ctx, d, dev); err != nil {
		t.Fatal(err)
	}
	if d.rec.State != CeremonyAborted || d.rec.Reason != ReasonBadProof {
		t.Fatalf("refused decline recorded as %+v", d.rec)
	}
	got, err := iv.s.Invitation(ctx, rec.ID)
	if err != nil || got.State != InvitationPending {
		t.Fatalf("invitation after a refused decline: %+v, %v", got, err)
	}
	// An accept proof is not a decline proof either.
	d2, dev2 := iv.acceptance(t, rec, 2, rec.Secret, labelAccept)
	if err := iv.s.takeDecline(ctx, d2, dev2); err != nil {
		t.Fatal(err)
	}
	if got, _ := iv.s.Invitation(ctx, rec.ID); got.State != InvitationPending {
		t.Fatalf("accept proof declined the invitation: %+v", got)
	}
	// The real decline resolves it.
	d3, dev3 := iv.acceptance(t, rec, 3, rec.Secret, labelDecline)
	if err := iv.s.takeDecline(ctx, d3, dev3); err != nil {
		t.Fatal(err)
	}
	if got, _ := iv.s.Invitation(ctx, rec.ID); got.State != InvitationDeclined || got.Invitee != dev3 {
		t.Fatalf("after a proven decline: %+v", got)
	}
}

// The abort fact a refused decline leaves says what the record says.
func TestRefusedDeclineAbortFact(t *testing.T) {
	ctx := context.Background()
	iv := newInviter(t)
	rec := iv.invite(t)
	wrong := rec.Secret
	wrong[5] ^= 1
	d, dev := iv.acceptance(t, rec, 1, wrong, labelDecline)
	if err := iv.s.takeDecline(ctx, d, dev); err != nil {
		t.Fatal(err)
	}
	facts := iv.factsOf(t, TypeAbort)
	if len(facts) != 1 {
		t.Fatalf("%d abort facts", len(facts))
	}
	a, err := DecodeAbort(facts[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if a.Reason != d.rec.Reason {
		t.Fatalf("abort fact says %q, the ceremony record %q", a.Reason, d.rec.Reason)
	}
}

// An expired invitation can be neither accepted, declined nor cancelled.
func TestExpiredInvitation(t *testing.T) {
	ctx := context.Background()
	iv := newInviter(t)
	rec := iv.invite(t)
	if rec.Expires != t0.Add(time.Hour) {
		t.Fatalf("expires %s, want %s", rec.Expires, t0.Add(time.Hour))
	}
	iv.clock.Set(rec.Expires)
	d, dev := iv.acceptance(t, rec, 1, rec.Secret, labelAccept)
	if err := iv.s.decide(ctx, d, dev); !errors.Is(err, ErrNotPending) {
		t.Fatalf("accept at expiry: %v", err)
	}
	dd, ddev := iv.acceptance(t, rec, 2, rec.Secret, labelDecline)
	if err := iv.s.takeDecline(ctx, dd, ddev); err != nil || dd.rec.State != CeremonyAborted {
		t.Fatalf("decline at expiry: %v, %+v", err, dd.rec)
	}
	if _, err := iv.s.Cancel(ctx, rec.ID); !errors.Is(err, ErrNotPending) {
		t.Fatalf("cancel at expiry: %v", err)
	}
	got, err := iv.s.Invitation(ctx, rec.ID)
	if err != nil || got.State != InvitationPending || !got.Expired(iv.clock.Now()) {
		t.Fatalf("expired invitation: %+v, %v", got, err)
	}
	if n, c := iv.contextGeneses(t), len(iv.factsOf(t, TypeCommit)); n != 0 || c != 0 {
		t.Fatalf("%d contexts and %d commits for an expired invitation", n, c)
	}
	// One second before expiry it could still have been accepted.
	rec2 := iv.invite(t)
	iv.clock.Set(rec2.Expires.Add(-time.Second))
	d2, dev2 := iv.acceptance(t, rec2, 1, rec2.Secret, labelAccept)
	if err := iv.s.decide(ctx, d2, dev2); err != nil {
		t.Fatalf("accept just before expiry: %v", err)
	}
}

// The invitee is told an expired invitation expired, not that it was
// already resolved.
func TestExpiredReason(t *testing.T) {
	ctx := context.Background()
	iv := newInviter(t)
	rec := iv.invite(t)
	iv.clock.Set(rec.Expires)
	d, dev := iv.acceptance(t, rec, 1, rec.Secret, labelAccept)
	err := iv.s.decide(ctx, d, dev)
	if got := reasonOf(err); got != ReasonExpired {
		t.Fatalf("reason of %v = %q, want %q", err, got, ReasonExpired)
	}
}

// A restart ends every ceremony left running (aborted, "restarted", with an
// abort fact) and leaves finished ones as they were.
func TestAbortLeftRunning(t *testing.T) {
	ctx := context.Background()
	iv := newInviter(t)
	rec := iv.invite(t)
	committed, dev := iv.acceptance(t, rec, 1, rec.Secret, labelAccept)
	if err := iv.s.saveRecord(ctx, committed.rec); err != nil {
		t.Fatal(err)
	}
	if err := iv.s.decide(ctx, committed, dev); err != nil {
		t.Fatal(err)
	}
	running, _ := iv.acceptance(t, iv.invite(t), 2, [32]byte{}, labelAccept)
	if err := iv.s.saveRecord(ctx, running.rec); err != nil {
		t.Fatal(err)
	}
	before, err := iv.s.Record(ctx, committed.rec.ID)
	if err != nil || before.State != CeremonyCommitted {
		t.Fatalf("committed record: %+v, %v", before, err)
	}
	aborts := len(iv.factsOf(t, TypeAbort))

	iv.clock.Advance(time.Minute)
	iv.restart(t)

	got, err := iv.s.Record(ctx, running.rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != CeremonyAborted || got.Reason != ReasonRestarted || !got.Updated.Equal(iv.clock.Now()) {
		t.Fatalf("record left running, after restart: %+v", got)
	}
	after, err := iv.s.Record(ctx, committed.rec.ID)
	if err != nil || string(after.encode()) != string(before.encode()) {
		t.Fatalf("committed record changed by the restart: %+v -> %+v (%v)", before, after, err)
	}
	facts := iv.factsOf(t, TypeAbort)
	if len(facts) != aborts+1 {
		t.Fatalf("%d abort facts after the restart, want %d", len(facts), aborts+1)
	}
	a, err := DecodeAbort(facts[len(facts)-1].Payload)
	if err != nil || a.Ceremony != running.rec.ID || a.Reason != ReasonRestarted {
		t.Fatalf("abort fact %+v, %v", a, err)
	}
	// A second restart finds nothing left to abort.
	iv.restart(t)
	if n := len(iv.factsOf(t, TypeAbort)); n != aborts+1 {
		t.Fatalf("%d abort facts after a second restart, want %d", n, aborts+1)
	}
	// The committed context's root survived and still derives keys.
	if _, err := iv.s.ContextKey(ctx, before.Context, "chat", 0); err != nil {
		t.Fatalf("context key after restart: %v", err)
	}
}
