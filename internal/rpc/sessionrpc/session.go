// Package sessionrpc adapts the choreography session runtime to
// aura.session.v1.SessionService.
package sessionrpc

import (
	"context"
	"fmt"
	"sort"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	sessionv1 "github.com/aura-p2p/aura/api/proto/aura/session/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/safetext"
	"github.com/aura-p2p/aura/internal/session"
)

// Runtime is what the service needs from the session runtime.
type Runtime interface {
	Start(ctx context.Context, protocol string, roles map[string]core.DeviceID, o session.StartOptions) (session.Session, error)
	Wait(ctx context.Context, id session.SessionID) (session.Session, error)
	Get(id session.SessionID) (session.Session, error)
	List() []session.Session
	Watch(ctx context.Context) *session.Watch
}

// Service implements SessionService.
type Service struct {
	sessionv1.UnsafeSessionServiceServer
	rt   Runtime
	self core.DeviceID
}

// New returns the service; "self" in a role map means self.
func New(rt Runtime, self core.DeviceID) *Service { return &Service{rt: rt, self: self} }

// Register adds the service to g.
func (s *Service) Register(g *grpc.Server) { sessionv1.RegisterSessionServiceServer(g, s) }

// Permissions of the service's methods. Starting a session sends messages
// and spends budget, like a ping.
func Permissions() rpc.Permissions {
	return rpc.Permissions{
		sessionv1.SessionService_StartSession_FullMethodName:  rpc.Write,
		sessionv1.SessionService_ListSessions_FullMethodName:  rpc.Read,
		sessionv1.SessionService_GetSession_FullMethodName:    rpc.Read,
		sessionv1.SessionService_WatchSessions_FullMethodName: rpc.Read,
	}
}

func (s *Service) StartSession(ctx context.Context, req *sessionv1.StartSessionRequest) (*sessionv1.StartSessionResponse, error) {
	if req.GetProtocol() == "" {
		return nil, fmt.Errorf("no protocol given: %w", core.ErrInvalidArgument)
	}
	if err := safetext.CheckName("protocol name", req.GetProtocol()); err != nil {
		return nil, err
	}
	for _, c := range req.GetChoices() {
		if err := safetext.CheckName("choice", c); err != nil {
			return nil, err
		}
	}
	roles := map[string]core.DeviceID{}
	for _, r := range req.GetRoles() {
		if r.GetRole() == "" {
			return nil, fmt.Errorf("role assignment without a role: %w", core.ErrInvalidArgument)
		}
		if err := safetext.CheckName("role name", r.GetRole()); err != nil {
			return nil, err
		}
		if _, dup := roles[r.GetRole()]; dup {
			return nil, fmt.Errorf("role %s assigned twice: %w", rpc.QuoteInput(r.GetRole()), core.ErrInvalidArgument)
		}
		d := s.self
		if r.GetDeviceId() != "self" {
			var err error
			if d, err = core.ParseDevice(r.GetDeviceId()); err != nil {
				return nil, fmt.Errorf("role %s: %w", rpc.QuoteInput(r.GetRole()), err)
			}
		}
		roles[r.GetRole()] = d
	}
	o := session.StartOptions{Choices: req.GetChoices()}
	if c := req.GetContext(); c != "" {
		id, err := core.ParseContextRef(c)
		if err != nil {
			return nil, err
		}
		o.Context = id
	}
	sess, err := s.rt.Start(ctx, req.GetProtocol(), roles, o)
	if err != nil {
		return nil, err
	}
	if req.GetWait() {
		// Ending the call stops the waiting, not the session.
		if sess, err = s.rt.Wait(ctx, sess.ID); err != nil {
			return nil, err
		}
	}
	return &sessionv1.StartSessionResponse{Session: ToProto(sess)}, nil
}

func (s *Service) ListSessions(context.Context, *sessionv1.ListSessionsRequest) (*sessionv1.ListSessionsResponse, error) {
	resp := &sessionv1.ListSessionsResponse{}
	for _, sess := range s.rt.List() {
		resp.Sessions = append(resp.Sessions, ToProto(sess))
	}
	return resp, nil
}

func (s *Service) GetSession(_ context.Context, req *sessionv1.GetSessionRequest) (*sessionv1.GetSessionResponse, error) {
	id, err := s.sessionID(req.GetId())
	if err != nil {
		return nil, err
	}
	sess, err := s.rt.Get(id)
	if err != nil {
		return nil, err
	}
	return &sessionv1.GetSessionResponse{Session: ToProto(sess)}, nil
}

func (s *Service) WatchSessions(_ *sessionv1.WatchSessionsRequest, stream sessionv1.SessionService_WatchSessionsServer) error {
	ctx := stream.Context()
	w := s.rt.Watch(ctx)
	defer w.Close()
	for {
		select {
		case sess, ok := <-w.C():
			if !ok {
				if err := w.Err(); err != nil {
					return err
				}
				return ctx.Err()
			}
			if err := stream.Send(&sessionv1.WatchSessionsResponse{Session: ToProto(sess)}); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var states = map[session.State]sessionv1.SessionState{
	session.StateRunning:   sessionv1.SessionState_SESSION_STATE_RUNNING,
	session.StateCompleted: sessionv1.SessionState_SESSION_STATE_COMPLETED,
	session.StateAborted:   sessionv1.SessionState_SESSION_STATE_ABORTED,
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// ToProto converts a session snapshot.
func ToProto(s session.Session) *sessionv1.Session {
	out := &sessionv1.Session{
		Id: s.ID.String(), Protocol: s.Protocol, ProtocolHash: s.Hash.String(), Role: s.Role,
		Choices: s.Choices, Initiator: s.Initiator, State: states[s.State],
		Started: timestamp(s.Started), Updated: timestamp(s.Updated), Ended: timestamp(s.Ended),
		Steps: uint32(s.Steps),
	}
	if s.Context != (core.ContextID{}) {
		out.Context = "context/" + s.Context.String()
	}
	roles := make([]string, 0, len(s.Roles))
	for r := range s.Roles {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		out.Roles = append(out.Roles, &sessionv1.RoleAssignment{Role: r, DeviceId: s.Roles[r].String()})
	}
	if s.Reason != nil {
		out.Reason = &sessionv1.AbortReason{Code: s.Reason.Code.String(), By: s.Reason.By, Remote: s.Reason.Remote, Detail: s.Reason.Detail}
	}
	for _, st := range s.Log {
		out.Log = append(out.Log, &sessionv1.Step{
			At: timestamppb.New(st.At), Direction: st.Dir.String(), Peer: st.Peer, Label: st.Label, Branch: st.Branch, Size: uint32(st.Size),
		})
	}
	return out
}

// sessionID resolves a full session id or a unique prefix of at least
// rpc.MinPrefix hex digits among the sessions the runtime keeps.
func (s *Service) sessionID(in string) (session.SessionID, error) {
	if id, err := session.ParseSessionID(in); err == nil {
		return id, nil
	}
	if err := rpc.CheckPrefix("session", in); err != nil {
		return session.SessionID{}, err
	}
	list := s.rt.List()
	ids := make([]string, len(list))
	for i, x := range list {
		ids[i] = x.ID.String()
	}
	i, err := rpc.ResolvePrefix("session", in, ids)
	if err != nil {
		return session.SessionID{}, err
	}
	return list[i].ID, nil
}
