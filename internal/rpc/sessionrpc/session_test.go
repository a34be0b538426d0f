package sessionrpc

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	sessionv1 "github.com/aura-p2p/aura/api/proto/aura/session/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc/rpctest"
	"github.com/aura-p2p/aura/internal/session"
)

// fakeRuntime records what reaches it and fails every call with err.
type fakeRuntime struct {
	err   error
	calls int
	waits int
	roles map[string]core.DeviceID
	opts  session.StartOptions
}

func (f *fakeRuntime) Start(_ context.Context, protocol string, roles map[string]core.DeviceID, o session.StartOptions) (session.Session, error) {
	f.calls++
	f.roles, f.opts = roles, o
	return session.Session{ID: session.SessionID{1}, Protocol: protocol, State: session.StateRunning}, f.err
}

func (f *fakeRuntime) Wait(_ context.Context, id session.SessionID) (session.Session, error) {
	f.calls++
	f.waits++
	return session.Session{ID: id, State: session.StateCompleted}, f.err
}

func (f *fakeRuntime) Get(id session.SessionID) (session.Session, error) {
	f.calls++
	return session.Session{ID: id}, f.err
}

func (f *fakeRuntime) List() []session.Session {
	f.calls++
	return nil
}

func (f *fakeRuntime) Watch(context.Context) *session.Watch {
	panic("WatchSessions is not exercised with a fake runtime")
}

var (
	self  = core.DeviceID{1}
	other = core.DeviceID{2}
)

func role(r, d string) *sessionv1.RoleAssignment {
	return &sessionv1.RoleAssignment{Role: r, DeviceId: d}
}

// Every method: input refused before the runtime sees it, and the runtime's
// errors, each with the code the caller gets.
func TestValidationAndCodes(t *testing.T) {
	ctx := context.Background()
	start := func(req *sessionv1.StartSessionRequest) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.StartSession(ctx, req)
			return err
		}
	}
	ok := []*sessionv1.RoleAssignment{role("A", "self"), role("B", other.String())}
	tests := []struct {
		name      string
		call      func(s *Service) error
		domainErr error
		code      codes.Code
		reaches   bool
	}{
		{"start: no protocol", start(&sessionv1.StartSessionRequest{Roles: ok}), nil, codes.InvalidArgument, false},
		{"start: hidden character in protocol", start(&sessionv1.StartSessionRequest{Protocol: "Re\u200blay", Roles: ok}), nil, codes.InvalidArgument, false},
		{"start: hidden character in choice", start(&sessionv1.StartSessionRequest{Protocol: "Relay", Roles: ok, Choices: []string{"a\u202eb"}}), nil, codes.InvalidArgument, false},
		{"start: role without a name", start(&sessionv1.StartSessionRequest{Protocol: "Relay", Roles: []*sessionv1.RoleAssignment{role("", "self")}}), nil, codes.InvalidArgument, false},
		{"start: hidden character in role", start(&sessionv1.StartSessionRequest{Protocol: "Relay", Roles: []*sessionv1.RoleAssignment{role("A\u200d", "self")}}), nil, codes.InvalidArgument, false},
		{"start: role twice", start(&sessionv1.StartSessionRequest{Protocol: "Relay", Roles: []*sessionv1.RoleAssignment{role("A", "self"), role("A", other.String())}}), nil, codes.InvalidArgument, false},
		{"start: garbage device", start(&sessionv1.StartSessionRequest{Protocol: "Relay", Roles: []*sessionv1.RoleAssignment{role("A", "nobody")}}), nil, codes.InvalidArgument, false},
		{"start: garbage context", start(&sessionv1.StartSessionRequest{Protocol: "Relay", Roles: ok, Context: "context/zz"}), nil, codes.InvalidArgument, false},
		{"start: unknown protocol", start(&sessionv1.StartSessionRequest{Protocol: "Nope", Roles: ok}), fmt.Errorf("protocol: %w", core.ErrNotFound), codes.NotFound, true},
		{"start: runtime stopped", start(&sessionv1.StartSessionRequest{Protocol: "Relay", Roles: ok}), fmt.Errorf("stopped: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"start: ok", start(&sessionv1.StartSessionRequest{Protocol: "Relay", Roles: ok}), nil, codes.OK, true},
		{"list: ok", func(s *Service) error {
			_, err := s.ListSessions(ctx, &sessionv1.ListSessionsRequest{})
			return err
		}, nil, codes.OK, true},
		{"get: no id", func(s *Service) error {
			_, err := s.GetSession(ctx, &sessionv1.GetSessionRequest{})
			return err
		}, nil, codes.InvalidArgument, false},
		{"get: garbage id", func(s *Service) error {
			_, err := s.GetSession(ctx, &sessionv1.GetSessionRequest{Id: "zz"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"get: unknown session", func(s *Service) error {
			_, err := s.GetSession(ctx, &sessionv1.GetSessionRequest{Id: session.SessionID{3}.String()})
			return err
		}, fmt.Errorf("session: %w", core.ErrNotFound), codes.NotFound, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := &fakeRuntime{err: tc.domainErr}
			err := tc.call(New(rt, self))
			msg := rpctest.CheckOutcome(t, err, tc.code, rt.calls, tc.reaches, tc.domainErr)
			if tc.code == codes.InvalidArgument && strings.ContainsAny(msg, "\u200b\u200d\u202e") {
				t.Fatalf("message echoes a hidden character: %q", msg)
			}
		})
	}
}

// "self" is this device; the context and choices reach the runtime; with
// wait set the response is the ended session.
func TestStartRolesAndWait(t *testing.T) {
	rt := &fakeRuntime{}
	c := core.ContextID{4}
	resp, err := New(rt, self).StartSession(context.Background(), &sessionv1.StartSessionRequest{
		Protocol: "Relay", Roles: []*sessionv1.RoleAssignment{role("A", "self"), role("B", other.String())},
		Context: "context/" + c.String(), Choices: []string{"More"}, Wait: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.roles) != 2 || rt.roles["A"] != self || rt.roles["B"] != other {
		t.Fatalf("roles %v", rt.roles)
	}
	if rt.opts.Context != c || len(rt.opts.Choices) != 1 || rt.opts.Choices[0] != "More" {
		t.Fatalf("options %+v", rt.opts)
	}
	if rt.waits != 1 || resp.GetSession().GetState() != sessionv1.SessionState_SESSION_STATE_COMPLETED {
		t.Fatalf("waits %d, response %v", rt.waits, resp)
	}
}
