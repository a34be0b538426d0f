package ceremony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/session"
)

// loopSessions runs a ContactInvitation session in process: the invitee's
// handlers here, the inviter's on the peer, called in the protocol's order
// as the runtime would, with drafts committed as the sender. It stands in
// for the transport so that the ceremony's checks can be driven with
// tampered messages; the runtime itself is tested in internal/session.
type loopSessions struct {
	dev  *device
	peer *loopSessions
	// tamper, if set, rewrites the inviter's Commit message in flight.
	tamper func(payload []byte) []byte

	mu       sync.Mutex
	handlers map[string]session.Handler
	done     map[session.SessionID]session.Session
	n        byte
}

func (l *loopSessions) Register(protocolName, role string, h session.Handler) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.handlers == nil {
		l.handlers = map[string]session.Handler{}
	}
	l.handlers[protocolName+"/"+role] = h
	return nil
}

func (l *loopSessions) handler(protocolName, role string) session.Handler {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.handlers[protocolName+"/"+role]
}

func (l *loopSessions) Start(ctx context.Context, protocolName string, roles map[string]core.DeviceID, _ session.StartOptions) (session.Session, error) {
	if l.peer == nil {
		return session.Session{}, fmt.Errorf("no peer in this test: %w", core.ErrUnavailable)
	}
	l.mu.Lock()
	l.n++
	id := session.SessionID{l.dev.seed, l.n}
	l.mu.Unlock()
	out := l.run(ctx, id, protocolName, roles)
	l.mu.Lock()
	if l.done == nil {
		l.done = map[session.SessionID]session.Session{}
	}
	l.done[id] = out
	l.mu.Unlock()
	return session.Session{ID: id, Protocol: protocolName, Roles: roles, State: session.StateRunning}, nil
}

func (l *loopSessions) Wait(_ context.Context, id session.SessionID) (session.Session, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.done[id]
	if !ok {
		return s, fmt.Errorf("session %s: %w", id, core.ErrNotFound)
	}
	return s, nil
}

func (l *loopSessions) commit(ctx context.Context, drafts []journal.Draft) error {
	for _, d := range drafts {
		if _, _, err := l.dev.j.AppendLocal(ctx, journal.NewKeySigner(l.dev.key), d); err != nil {
			return err
		}
	}
	return nil
}

func (l *loopSessions) run(ctx context.Context, id session.SessionID, proto string, roles map[string]core.DeviceID) session.Session {
	ended := func(err error) session.Session {
		s := session.Session{ID: id, Protocol: proto, Roles: roles, State: session.StateCompleted}
		if err != nil {
			s.State, s.Reason = session.StateAborted, &session.AbortReason{Detail: err.Error()}
		}
		return s
	}
	me := session.Info{ID: id, Protocol: proto, Role: RoleInvitee, Roles: roles}
	them := session.Info{ID: id, Protocol: proto, Role: RoleInviter, Roles: roles}
	invitee, inviter := l.handler(proto, RoleInvitee), l.peer.handler(proto, RoleInviter)

	label, err := invitee.Choose(ctx, me, nil)
	if err != nil {
		return ended(err)
	}
	p, drafts, err := invitee.Send(ctx, me, choreo.Action{Label: label})
	if err == nil {
		err = l.commit(ctx, drafts)
	}
	if err == nil {
		err = inviter.Receive(ctx, them, choreo.Action{Label: label}, p)
	}
	if err != nil || label == labelDecline {
		return ended(err)
	}
	label, err = inviter.Choose(ctx, them, nil)
	if err != nil {
		return ended(err)
	}
	p, drafts, err = inviter.Send(ctx, them, choreo.Action{Label: label})
	if err == nil {
		err = l.peer.commit(ctx, drafts)
	}
	if err != nil {
		return ended(err)
	}
	if label == labelCommit && l.tamper != nil {
		p = l.tamper(p)
	}
	if err := invitee.Receive(ctx, me, choreo.Action{Label: label}, p); err != nil || label == labelAbort {
		return ended(err)
	}
	if p, _, err = invitee.Send(ctx, me, choreo.Action{Label: labelConfirm}); err != nil {
		return ended(err)
	}
	return ended(inviter.Receive(ctx, them, choreo.Action{Label: labelConfirm}, p))
}

// pair is an inviter and an invitee whose sessions reach each other.
func pair(t *testing.T) (a, b *device) {
	a, b = newDevice(t, 1), newDevice(t, 2)
	a.sess.peer, b.sess.peer = b.sess, a.sess
	return a, b
}

func code(t *testing.T, a *device) (*InvitationRecord, string) {
	t.Helper()
	rec, c, err := a.s.Invite(context.Background(), 0, "hello")
	if err != nil {
		t.Fatal(err)
	}
	return rec, c
}

// Accepted ⇒ both sides hold the same context (same genesis, both members)
// with the same root secret, a contact for each other, and final records.
func TestAcceptBothSides(t *testing.T) {
	ctx := context.Background()
	a, b := pair(t)
	inv, c := code(t, a)
	rec, err := b.s.Accept(ctx, c, "alice")
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if rec.State != CeremonyCommitted || rec.Role != RoleInvitee || rec.Peer != deviceOf(a.key) {
		t.Fatalf("invitee's record: %+v", rec)
	}
	arec, err := a.s.Record(ctx, rec.ID)
	if err != nil || arec.State != CeremonyCommitted || arec.Context != rec.Context || !arec.Confirmed || arec.Role != RoleInviter {
		t.Fatalf("inviter's record: %+v, %v", arec, err)
	}
	got, err := a.s.Invitation(ctx, inv.ID)
	if err != nil || got.State != InvitationAccepted || got.Context != rec.Context || got.Invitee != deviceOf(b.key) {
		t.Fatalf("invitation: %+v, %v", got, err)
	}
	ns := core.ContextNamespace(rec.Context)
	for _, d := range []*device{a, b} {
		ms, err := d.j.Members(ctx, ns)
		if err != nil || len(ms) != 2 {
			t.Fatalf("device %d: members %v, %v", d.seed, ms, err)
		}
	}
	for _, purpose := range []string{"chat", "files"} {
		ka, errA := a.s.ContextKey(ctx, rec.Context, purpose, 3)
		kb, errB := b.s.ContextKey(ctx, rec.Context, purpose, 3)
		if errA != nil || errB != nil || ka != kb {
			t.Fatalf("%s keys differ: %x (%v) vs %x (%v)", purpose, ka, errA, kb, errB)
		}
	}
	ac, err := a.s.Contacts(ctx)
	if err != nil || len(ac) != 1 || ac[0].Device != deviceOf(b.key) || ac[0].Context != rec.Context {
		t.Fatalf("inviter's contacts: %+v, %v", ac, err)
	}
	bc, err := b.s.Contacts(ctx)
	if err != nil || len(bc) != 1 || bc[0].Device != deviceOf(a.key) || bc[0].Nickname != "alice" || bc[0].Authority != a.s.o.Authority {
		t.Fatalf("invitee's contacts: %+v, %v", bc, err)
	}

	// The code is spent: here it was already accepted; from another device
	// the inviter refuses it.
	if _, err := b.s.Accept(ctx, c, ""); !errors.Is(err, ErrAlreadyAccepted) {
		t.Fatalf("second accept: %v", err)
	}
	third := newDevice(t, 3)
	third.sess.peer = a.sess
	r3, err := third.s.Accept(ctx, c, "")
	if !errors.Is(err, core.ErrFailedPrecondition) || r3 == nil || r3.State != CeremonyAborted || r3.Reason != ReasonAlreadyResolved {
		t.Fatalf("third device: %+v, %v", r3, err)
	}
	if cs, _ := third.s.Contacts(ctx); len(cs) != 0 {
		t.Fatalf("third device has contacts: %+v", cs)
	}
}

func TestDeclineAndCancelThroughSessions(t *testing.T) {
	ctx := context.Background()
	a, b := pair(t)
	inv, c := code(t, a)
	rec, err := b.s.Decline(ctx, c)
	if err != nil || rec.State != CeremonyDeclined {
		t.Fatalf("Decline: %+v, %v", rec, err)
	}
	if got, _ := a.s.Invitation(ctx, inv.ID); got.State != InvitationDeclined {
		t.Fatalf("invitation after decline: %+v", got)
	}
	if rec, err := b.s.Accept(ctx, c, ""); !errors.Is(err, core.ErrFailedPrecondition) || rec.State != CeremonyAborted {
		t.Fatalf("accept after decline: %+v, %v", rec, err)
	}

	inv2, c2 := code(t, a)
	if _, err := a.s.Cancel(ctx, inv2.ID); err != nil {
		t.Fatal(err)
	}
	rec2, err := b.s.Accept(ctx, c2, "")
	if !errors.Is(err, core.ErrFailedPrecondition) || rec2.State != CeremonyAborted || rec2.Reason != ReasonAlreadyResolved || !bytes.Contains([]byte(rec2.Detail), []byte("cancelled")) {
		t.Fatalf("accept after cancel: %+v, %v", rec2, err)
	}
	if cs, _ := b.s.Contacts(ctx); len(cs) != 0 {
		t.Fatalf("contacts after refused accepts: %+v", cs)
	}
}

// resign rewrites the commit message's commit fact payload and signs it
// again with key, so that only the content is wrong.
func resign(t *testing.T, p []byte, signer *device, edit func(c *Commit), editFact func(f *journal.Fact)) []byte {
	m, err := decodeCommitMsg(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCommit(m.Commit.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(c)
	}
	f := m.Commit.Fact
	f.Payload = c.Encode()
	if editFact != nil {
		editFact(&f)
	}
	f.Author = deviceOf(signer.key)
	sf, err := journal.SignFact(journal.NewKeySigner(signer.key), f)
	if err != nil {
		t.Fatal(err)
	}
	m.Commit = sf
	return m.encode()
}

// A commit the invitee cannot check leaves nothing usable on its side: no
// context, no root, no contact; the ceremony is recorded as aborted.
func TestBadCommitLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, a, third *device, p []byte) []byte
		want   error
	}{
		{"garbage", func(t *testing.T, _, _ *device, p []byte) []byte { return p[:len(p)/2] }, core.ErrInvalidArgument},
		{"signed by another device", func(t *testing.T, _, third *device, p []byte) []byte { return resign(t, p, third, nil, nil) }, core.ErrPermissionDenied},
		{"other ceremony", func(t *testing.T, a, _ *device, p []byte) []byte {
			return resign(t, p, a, func(c *Commit) { c.Ceremony[0] ^= 1 }, nil)
		}, core.ErrPermissionDenied},
		{"other invitee device", func(t *testing.T, a, _ *device, p []byte) []byte {
			return resign(t, p, a, func(c *Commit) { c.InviteeDevID[0] ^= 1 }, nil)
		}, core.ErrPermissionDenied},
		{"root sealed to another key", func(t *testing.T, a, _ *device, p []byte) []byte {
			return resign(t, p, a, func(c *Commit) {
				_, pub := seededHPKE(t, 9)
				var root [RootSize]byte
				c.InviteeRoot, _ = sealRoot(bytes.NewReader(make([]byte, 64)), pub, root, c.Ceremony)
			}, nil)
		}, core.ErrPermissionDenied},
		{"commit in another namespace", func(t *testing.T, a, _ *device, p []byte) []byte {
			return resign(t, p, a, nil, func(f *journal.Fact) { f.Namespace = core.ContextNamespace(core.ContextID{7}) })
		}, core.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			a, b := pair(t)
			third := newDevice(t, 3)
			b.sess.tamper = func(p []byte) []byte { return tc.tamper(t, a, third, p) }
			_, c := code(t, a)
			rec, err := b.s.Accept(ctx, c, "x")
			if !errors.Is(err, tc.want) {
				t.Fatalf("Accept = %v, want %v", err, tc.want)
			}
			if rec == nil || rec.State != CeremonyAborted || rec.Reason != ReasonBadCommit {
				t.Fatalf("invitee's record: %+v", rec)
			}
			stored, err := b.s.Record(ctx, rec.ID)
			if err != nil || stored.State != CeremonyAborted {
				t.Fatalf("stored record: %+v, %v", stored, err)
			}
			assertNothingUsable(t, b)
		})
	}
}

// assertNothingUsable checks that d holds no contact, no context and no
// root secret.
func assertNothingUsable(t *testing.T, d *device) {
	t.Helper()
	ctx := context.Background()
	if cs, err := d.s.Contacts(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("contacts: %+v, %v", cs, err)
	}
	var roots int
	if err := d.s.view(ctx, subRoots, func(b *journal.ExtStore) error {
		return b.ForEach(func(_, _ []byte) error { roots++; return nil })
	}); err != nil || roots != 0 {
		t.Fatalf("%d root secrets (%v)", roots, err)
	}
	if n := d.contextGeneses(t); n != 0 {
		t.Fatalf("%d contexts", n)
	}
}

// The commit names the prestate the ceremony started from; the invitee
// checks it like every other field it can compute.
func TestCommitWrongPrestate(t *testing.T) {
	ctx := context.Background()
	a, b := pair(t)
	b.sess.tamper = func(p []byte) []byte { return resign(t, p, a, func(c *Commit) { c.Prestate[0] ^= 1 }, nil) }
	_, c := code(t, a)
	if rec, err := b.s.Accept(ctx, c, ""); !errors.Is(err, core.ErrPermissionDenied) {
		t.Fatalf("Accept = %+v, %v; want ErrPermissionDenied", rec, err)
	}
	assertNothingUsable(t, b)
}
