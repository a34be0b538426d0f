package ceremonyrpc

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	ceremonyv1 "github.com/aura-p2p/aura/api/proto/aura/ceremony/v1"
	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/rpctest"
)

// fakeCeremonies records what reaches it. The method named failIn fails with
// err; the others succeed, so that a call listing first and acting second
// can fail at either step.
type fakeCeremonies struct {
	failIn string
	err    error
	calls  int

	invs      []*ceremony.InvitationRecord
	recs      []*ceremony.Record
	watch     chan ceremony.Record
	watchCtx  context.Context
	expires   time.Duration
	message   string
	cancelled [16]byte
	code      string
	nickname  string
}

func (f *fakeCeremonies) fail(method string) error {
	f.calls++
	if method == f.failIn {
		return f.err
	}
	return nil
}

func (f *fakeCeremonies) Invite(_ context.Context, expires time.Duration, message string) (*ceremony.InvitationRecord, string, error) {
	f.expires, f.message = expires, message
	if err := f.fail("Invite"); err != nil {
		return nil, "", err
	}
	return &ceremony.InvitationRecord{ID: [16]byte{9}, State: ceremony.InvitationPending}, ceremony.CodePrefix + "x", nil
}

func (f *fakeCeremonies) Invitations(context.Context) ([]*ceremony.InvitationRecord, error) {
	if err := f.fail("Invitations"); err != nil {
		return nil, err
	}
	return f.invs, nil
}

func (f *fakeCeremonies) Cancel(_ context.Context, id [16]byte) (*ceremony.InvitationRecord, error) {
	f.cancelled = id
	if err := f.fail("Cancel"); err != nil {
		return nil, err
	}
	return &ceremony.InvitationRecord{ID: id, State: ceremony.InvitationCancelled}, nil
}

func (f *fakeCeremonies) Accept(_ context.Context, code, nickname string) (*ceremony.Record, error) {
	f.code, f.nickname = code, nickname
	if err := f.fail("Accept"); err != nil {
		return nil, err
	}
	return &ceremony.Record{State: ceremony.CeremonyCommitted}, nil
}

func (f *fakeCeremonies) Decline(_ context.Context, code string) (*ceremony.Record, error) {
	f.code = code
	if err := f.fail("Decline"); err != nil {
		return nil, err
	}
	return &ceremony.Record{State: ceremony.CeremonyDeclined}, nil
}

func (f *fakeCeremonies) Records(context.Context) ([]*ceremony.Record, error) {
	if err := f.fail("Records"); err != nil {
		return nil, err
	}
	return f.recs, nil
}

func (f *fakeCeremonies) Watch(ctx context.Context) <-chan ceremony.Record {
	f.calls++
	f.watchCtx = ctx
	return f.watch
}

// Two invitations and two ceremonies whose ids share their first 8 hex
// digits, so that "aabbccdd" is ambiguous and one more byte is not.
var (
	inv1 = [16]byte{0xaa, 0xbb, 0xcc, 0xdd, 0x01}
	inv2 = [16]byte{0xaa, 0xbb, 0xcc, 0xdd, 0x02}
	cer1 = core.Hash{0xaa, 0xbb, 0xcc, 0xdd, 0x01}
	cer2 = core.Hash{0xaa, 0xbb, 0xcc, 0xdd, 0x02}
)

func newFake(failIn string, err error) *fakeCeremonies {
	return &fakeCeremonies{
		failIn: failIn, err: err,
		invs: []*ceremony.InvitationRecord{{ID: inv1, State: ceremony.InvitationPending}, {ID: inv2, State: ceremony.InvitationPending}},
		recs: []*ceremony.Record{{ID: cer1}, {ID: cer2}},
	}
}

// Every method: input refused before the ceremony service sees it, and the
// service's errors, each with the code the caller gets.
func TestValidationAndCodes(t *testing.T) {
	ctx := context.Background()
	create := func(req *ceremonyv1.CreateInvitationRequest) func(s *Service) error {
		return func(s *Service) error { _, err := s.CreateInvitation(ctx, req); return err }
	}
	cancel := func(id string) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.CancelInvitation(ctx, &ceremonyv1.CancelInvitationRequest{Id: id})
			return err
		}
	}
	accept := func(code string) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.AcceptInvitation(ctx, &ceremonyv1.AcceptInvitationRequest{Code: code, Nickname: "bob"})
			return err
		}
	}
	decline := func(s *Service) error {
		_, err := s.DeclineInvitation(ctx, &ceremonyv1.DeclineInvitationRequest{Code: ceremony.CodePrefix + "x"})
		return err
	}
	get := func(id string) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.GetCeremony(ctx, &ceremonyv1.GetCeremonyRequest{Id: id})
			return err
		}
	}
	listInvitations := func(s *Service) error {
		_, err := s.ListInvitations(ctx, &ceremonyv1.ListInvitationsRequest{})
		return err
	}
	listCeremonies := func(s *Service) error {
		_, err := s.ListCeremonies(ctx, &ceremonyv1.ListCeremoniesRequest{})
		return err
	}
	code := ceremony.CodePrefix + "x"
	tests := []struct {
		name      string
		call      func(s *Service) error
		failIn    string // the fake's method that fails with domainErr
		domainErr error
		code      codes.Code
		reaches   bool
	}{
		{"create: expires not a valid duration", create(&ceremonyv1.CreateInvitationRequest{Expires: &durationpb.Duration{Seconds: 1, Nanos: -1}}), "", nil, codes.InvalidArgument, false},
		{"create: negative expires", create(&ceremonyv1.CreateInvitationRequest{Expires: durationpb.New(-time.Hour)}), "", nil, codes.InvalidArgument, false},
		{"create: zero expires", create(&ceremonyv1.CreateInvitationRequest{Expires: durationpb.New(0)}), "", nil, codes.InvalidArgument, false},
		{"create: expires beyond the service's range", create(&ceremonyv1.CreateInvitationRequest{Expires: durationpb.New(1000 * time.Hour)}),
			"Invite", fmt.Errorf("expiry: %w", core.ErrInvalidArgument), codes.InvalidArgument, true},
		{"create: message too long", create(&ceremonyv1.CreateInvitationRequest{Message: strings.Repeat("m", ceremony.MaxMessageBytes+1)}),
			"Invite", fmt.Errorf("message: %w", core.ErrInvalidArgument), codes.InvalidArgument, true},
		{"create: journal closed", create(&ceremonyv1.CreateInvitationRequest{}), "Invite", fmt.Errorf("commit: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"create: ok", create(&ceremonyv1.CreateInvitationRequest{Expires: durationpb.New(time.Hour), Message: "hi"}), "", nil, codes.OK, true},

		{"list invitations: store closed", listInvitations, "Invitations", fmt.Errorf("view: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"list invitations: ok", listInvitations, "", nil, codes.OK, true},

		{"cancel: no id", cancel(""), "", nil, codes.InvalidArgument, false},
		{"cancel: blank id", cancel("   "), "", nil, codes.InvalidArgument, false},
		{"cancel: prefix too short", cancel("aabbccd"), "", nil, codes.InvalidArgument, false},
		{"cancel: not hex", cancel("aabbccdz"), "", nil, codes.InvalidArgument, false},
		{"cancel: id with a namespace prefix", cancel("context/aabbccdd01"), "", nil, codes.InvalidArgument, false},
		{"cancel: ambiguous prefix", cancel("aabbccdd"), "", nil, codes.InvalidArgument, true},
		{"cancel: unknown id", cancel("ffffffff"), "", nil, codes.NotFound, true},
		{"cancel: store closed", cancel("aabbccdd01"), "Invitations", fmt.Errorf("view: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"cancel: no longer pending", cancel("aabbccdd01"), "Cancel", fmt.Errorf("invitation is accepted: %w", ceremony.ErrNotPending), codes.FailedPrecondition, true},
		{"cancel: expired", cancel("aabbccdd01"), "Cancel", fmt.Errorf("at noon: %w", ceremony.ErrInvitationExpired), codes.FailedPrecondition, true},
		{"cancel: gone meanwhile", cancel("aabbccdd01"), "Cancel", ceremony.ErrNotFound, codes.NotFound, true},
		{"cancel: ok", cancel("AABBCCDD01"), "", nil, codes.OK, true},

		{"accept: malformed code", accept("nonsense"), "Accept", ceremony.ErrCodeMalformed, codes.InvalidArgument, true},
		{"accept: forged code", accept(code), "Accept", ceremony.ErrCodeForged, codes.InvalidArgument, true},
		{"accept: bad nickname", accept(code), "Accept", fmt.Errorf("nickname has a control character: %w", core.ErrInvalidArgument), codes.InvalidArgument, true},
		{"accept: own invitation", accept(code), "Accept", ceremony.ErrOwnInvitation, codes.InvalidArgument, true},
		{"accept: expired code", accept(code), "Accept", fmt.Errorf("%w at noon", ceremony.ErrCodeExpired), codes.FailedPrecondition, true},
		{"accept: already accepted", accept(code), "Accept", fmt.Errorf("contact context 01: %w", ceremony.ErrAlreadyAccepted), codes.AlreadyExists, true},
		{"accept: answer already running", accept(code), "Accept", ceremony.ErrAcceptRunning, codes.FailedPrecondition, true},
		{"accept: inviter unreachable", accept(code), "Accept", ceremony.ErrUnreachable, codes.Unavailable, true},
		{"accept: refused by the inviter's guard", accept(code), "Accept", fmt.Errorf("blocked: %w", core.ErrPermissionDenied), codes.PermissionDenied, true},
		{"accept: ok", accept(code), "", nil, codes.OK, true},
		{"decline: malformed code", decline, "Decline", ceremony.ErrCodeMalformed, codes.InvalidArgument, true},
		{"decline: inviter unreachable", decline, "Decline", ceremony.ErrUnreachable, codes.Unavailable, true},
		{"decline: ok", decline, "", nil, codes.OK, true},

		{"list ceremonies: record damaged", listCeremonies, "Records", fmt.Errorf("ceremony record: %w", core.ErrDataLoss), codes.DataLoss, true},
		{"list ceremonies: ok", listCeremonies, "", nil, codes.OK, true},

		{"get: no id", get(""), "", nil, codes.InvalidArgument, false},
		{"get: prefix too short", get("aabb"), "", nil, codes.InvalidArgument, false},
		{"get: not hex", get("ceremony-1"), "", nil, codes.InvalidArgument, false},
		{"get: ambiguous prefix", get("aabbccdd"), "", nil, codes.InvalidArgument, true},
		{"get: unknown id", get(strings.Repeat("f", 64)), "", nil, codes.NotFound, true},
		{"get: store closed", get("aabbccdd01"), "Records", fmt.Errorf("view: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"get: ok", get(cer2.String()), "", nil, codes.OK, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(tc.failIn, tc.domainErr)
			err := tc.call(New(f, core.SystemClock{}))
			rpctest.CheckOutcome(t, err, tc.code, f.calls, tc.reaches, tc.domainErr)
		})
	}
}

// What reaches the service is what the request said: an unset expiry is
// the service's default (zero), a code and nickname pass untouched, and an
// id prefix resolves to the full id.
func TestRequestsReachTheService(t *testing.T) {
	ctx := context.Background()
	f := newFake("", nil)
	s := New(f, core.SystemClock{})

	if _, err := s.CreateInvitation(ctx, &ceremonyv1.CreateInvitationRequest{Message: "hi"}); err != nil {
		t.Fatal(err)
	}
	if f.expires != 0 || f.message != "hi" {
		t.Fatalf("invite got %v %q, want the default expiry and the message", f.expires, f.message)
	}
	if _, err := s.CreateInvitation(ctx, &ceremonyv1.CreateInvitationRequest{Expires: durationpb.New(90 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if f.expires != 90*time.Minute {
		t.Fatalf("invite got %v, want 1h30m", f.expires)
	}

	if _, err := s.AcceptInvitation(ctx, &ceremonyv1.AcceptInvitationRequest{Code: " code ", Nickname: "bob"}); err != nil {
		t.Fatal(err)
	}
	if f.code != " code " || f.nickname != "bob" {
		t.Fatalf("accept got %q %q", f.code, f.nickname)
	}

	resp, err := s.CancelInvitation(ctx, &ceremonyv1.CancelInvitationRequest{Id: " aabbccdd02 "})
	if err != nil {
		t.Fatal(err)
	}
	if f.cancelled != inv2 || resp.GetInvitation().GetState() != ceremonyv1.InvitationState_INVITATION_STATE_CANCELLED {
		t.Fatalf("cancelled %x (%v), want %x", f.cancelled, resp.GetInvitation().GetState(), inv2)
	}

	got, err := s.GetCeremony(ctx, &ceremonyv1.GetCeremonyRequest{Id: "aabbccdd01"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetCeremony().GetId() != cer1.String() {
		t.Fatalf("got ceremony %s, want %s", got.GetCeremony().GetId(), cer1)
	}
}

// An inviter that could not be reached is marked as a peer failure, so that
// auractl tells it from aurad being unavailable; the service's other
// failures are not.
func TestUnreachableInviterCarriesTheReason(t *testing.T) {
	ctx := context.Background()
	accept := func(s *Service) error {
		_, err := s.AcceptInvitation(ctx, &ceremonyv1.AcceptInvitationRequest{Code: "c"})
		return err
	}
	decline := func(s *Service) error {
		_, err := s.DeclineInvitation(ctx, &ceremonyv1.DeclineInvitationRequest{Code: "c"})
		return err
	}
	tests := []struct {
		name   string
		call   func(s *Service) error
		failIn string
		err    error
		reason string
	}{
		{"accept: unreachable", accept, "Accept", fmt.Errorf("answer: %w", ceremony.ErrUnreachable), rpc.ReasonPeerUnreachable},
		{"decline: unreachable", decline, "Decline", ceremony.ErrUnreachable, rpc.ReasonPeerUnreachable},
		{"accept: journal unavailable", accept, "Accept", fmt.Errorf("commit: %w", core.ErrUnavailable), ""},
		{"accept: expired", accept, "Accept", ceremony.ErrCodeExpired, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := rpc.ToStatus(tc.call(New(newFake(tc.failIn, tc.err), core.SystemClock{})))
			if got := rpc.Reason(st.Err()); got != tc.reason {
				t.Fatalf("reason %q, want %q (%v)", got, tc.reason, st)
			}
		})
	}
}

// An invitation shows as expired once the clock passes its expiry while
// still pending; a resolved one shows who answered and what it made.
func TestInvitationState(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	invitee, cer, ctxID := core.DeviceID{0x11}, core.Hash{0x22}, core.ContextID{0x33}
	tests := []struct {
		name    string
		rec     ceremony.InvitationRecord
		want    ceremonyv1.InvitationState
		invitee string
	}{
		{"pending", ceremony.InvitationRecord{State: ceremony.InvitationPending, Expires: now.Add(time.Second)}, ceremonyv1.InvitationState_INVITATION_STATE_PENDING, ""},
		{"pending past its expiry", ceremony.InvitationRecord{State: ceremony.InvitationPending, Expires: now}, ceremonyv1.InvitationState_INVITATION_STATE_EXPIRED, ""},
		{"accepted, after its expiry", ceremony.InvitationRecord{State: ceremony.InvitationAccepted, Expires: now.Add(-time.Hour), Invitee: invitee, Ceremony: cer, Context: ctxID},
			ceremonyv1.InvitationState_INVITATION_STATE_ACCEPTED, invitee.String()},
		{"declined", ceremony.InvitationRecord{State: ceremony.InvitationDeclined, Invitee: invitee, Ceremony: cer}, ceremonyv1.InvitationState_INVITATION_STATE_DECLINED, invitee.String()},
		{"cancelled", ceremony.InvitationRecord{State: ceremony.InvitationCancelled}, ceremonyv1.InvitationState_INVITATION_STATE_CANCELLED, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeCeremonies{invs: []*ceremony.InvitationRecord{&tc.rec}}
			resp, err := New(f, core.NewManualClock(now)).ListInvitations(context.Background(), &ceremonyv1.ListInvitationsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got := resp.GetInvitations()[0]
			if got.GetState() != tc.want || got.GetInviteeDeviceId() != tc.invitee {
				t.Fatalf("state %v invitee %q, want %v %q", got.GetState(), got.GetInviteeDeviceId(), tc.want, tc.invitee)
			}
			if resolved := tc.rec.State != ceremony.InvitationPending; (got.GetResolved() != nil) != resolved {
				t.Fatalf("resolved %v for a %v invitation", got.GetResolved(), tc.rec.State)
			}
		})
	}
}

// A ceremony's detail reaches the client as valid UTF-8, which protobuf
// needs to marshal it.
func TestCeremonyDetailIsValidUTF8(t *testing.T) {
	f := &fakeCeremonies{recs: []*ceremony.Record{{ID: cer1, Detail: "peer said \xff\xfe"}}}
	resp, err := New(f, core.SystemClock{}).ListCeremonies(context.Background(), &ceremonyv1.ListCeremoniesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d := resp.GetCeremonies()[0].GetDetail(); !utf8.ValidString(d) || !strings.HasPrefix(d, "peer said ") {
		t.Fatalf("detail %q", d)
	}
}

// watchStream collects what WatchCeremonies sends; cancelAfter > 0 cancels
// the call's context after that many, as a client hanging up would.
type watchStream struct {
	ceremonyv1.CeremonyService_WatchCeremoniesServer
	ctx         context.Context
	cancel      context.CancelFunc
	cancelAfter int
	sendErr     error
	sent        []*ceremonyv1.Ceremony
}

func (s *watchStream) Context() context.Context { return s.ctx }

func (s *watchStream) Send(c *ceremonyv1.Ceremony) error {
	if s.sendErr != nil {
		return s.sendErr
	}
	s.sent = append(s.sent, c)
	if len(s.sent) == s.cancelAfter {
		s.cancel()
	}
	return nil
}

// The watch sends each record the service delivers until the client leaves
// (no error) or the service cuts a watcher that fell behind (resource
// exhausted, so the client lists and watches again); a failed send ends it
// with the send's error.
func TestWatchCeremonies(t *testing.T) {
	sendErr := fmt.Errorf("transport closing: %w", core.ErrUnavailable)
	tests := []struct {
		name        string
		queued      int  // records waiting in the service's channel
		closed      bool // the service closed the channel
		cancelFirst bool // the client left before the watch started
		cancelAfter int
		sendErr     error
		code        codes.Code
		sent        int
	}{
		{"client leaves after two", 2, false, false, 2, nil, codes.OK, 2},
		{"cut off after falling behind", 2, true, false, 0, nil, codes.ResourceExhausted, 2},
		{"client already gone", 0, true, true, 0, nil, codes.OK, 0},
		{"send fails", 2, false, false, 0, sendErr, codes.Unavailable, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan ceremony.Record, tc.queued)
			for i := range tc.queued {
				ch <- ceremony.Record{ID: core.Hash{byte(i + 1)}, State: ceremony.CeremonyRunning}
			}
			if tc.closed {
				close(ch)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelFirst {
				cancel()
			}
			f := &fakeCeremonies{watch: ch}
			st := &watchStream{ctx: ctx, cancel: cancel, cancelAfter: tc.cancelAfter, sendErr: tc.sendErr}
			err := New(f, core.SystemClock{}).WatchCeremonies(&ceremonyv1.WatchCeremoniesRequest{}, st)
			rpctest.CheckOutcome(t, err, tc.code, f.calls, true, tc.sendErr)
			if f.watchCtx != ctx {
				t.Fatal("the service's watch is not bound to the stream's context")
			}
			if len(st.sent) != tc.sent {
				t.Fatalf("sent %d, want %d", len(st.sent), tc.sent)
			}
			for i, c := range st.sent {
				if c.GetId() != (core.Hash{byte(i + 1)}).String() || c.GetState() != ceremonyv1.CeremonyState_CEREMONY_STATE_RUNNING {
					t.Fatalf("sent[%d] = %v", i, c)
				}
			}
		})
	}
}
