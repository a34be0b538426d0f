// Package ceremonyrpc adapts internal/ceremony's invitations and ceremony
// records to aura.ceremony.v1.CeremonyService.
package ceremonyrpc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	ceremonyv1 "github.com/aura-p2p/aura/api/proto/aura/ceremony/v1"
	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
)

// Ceremonies is what the service needs of the ceremony service.
type Ceremonies interface {
	Invite(ctx context.Context, expires time.Duration, message string) (*ceremony.InvitationRecord, string, error)
	Invitations(ctx context.Context) ([]*ceremony.InvitationRecord, error)
	Cancel(ctx context.Context, id [16]byte) (*ceremony.InvitationRecord, error)
	Accept(ctx context.Context, code, nickname string) (*ceremony.Record, error)
	Decline(ctx context.Context, code string) (*ceremony.Record, error)
	Records(ctx context.Context) ([]*ceremony.Record, error)
	Watch(ctx context.Context) <-chan ceremony.Record
}

// Service implements CeremonyService.
type Service struct {
	ceremonyv1.UnsafeCeremonyServiceServer
	c     Ceremonies
	clock core.Clock
}

// New returns the service.
func New(c Ceremonies, clock core.Clock) *Service { return &Service{c: c, clock: clock} }

// Register adds the service to g.
func (s *Service) Register(g *grpc.Server) { ceremonyv1.RegisterCeremonyServiceServer(g, s) }

// Permissions of the service's methods. Invitations create relationships,
// so making, answering and cancelling them needs write.
func Permissions() rpc.Permissions {
	return rpc.Permissions{
		ceremonyv1.CeremonyService_CreateInvitation_FullMethodName:  rpc.Write,
		ceremonyv1.CeremonyService_ListInvitations_FullMethodName:   rpc.Read,
		ceremonyv1.CeremonyService_CancelInvitation_FullMethodName:  rpc.Write,
		ceremonyv1.CeremonyService_AcceptInvitation_FullMethodName:  rpc.Write,
		ceremonyv1.CeremonyService_DeclineInvitation_FullMethodName: rpc.Write,
		ceremonyv1.CeremonyService_ListCeremonies_FullMethodName:    rpc.Read,
		ceremonyv1.CeremonyService_GetCeremony_FullMethodName:       rpc.Read,
		ceremonyv1.CeremonyService_WatchCeremonies_FullMethodName:   rpc.Read,
	}
}

func (s *Service) CreateInvitation(ctx context.Context, req *ceremonyv1.CreateInvitationRequest) (*ceremonyv1.CreateInvitationResponse, error) {
	var exp time.Duration
	if d := req.GetExpires(); d != nil {
		if err := d.CheckValid(); err != nil {
			return nil, fmt.Errorf("expires: %v: %w", err, core.ErrInvalidArgument)
		}
		if exp = d.AsDuration(); exp <= 0 {
			return nil, fmt.Errorf("expires must be positive: %w", core.ErrInvalidArgument)
		}
	}
	rec, code, err := s.c.Invite(ctx, exp, req.GetMessage())
	if err != nil {
		return nil, err
	}
	return &ceremonyv1.CreateInvitationResponse{Invitation: s.invitation(rec), Code: code}, nil
}

func (s *Service) ListInvitations(ctx context.Context, _ *ceremonyv1.ListInvitationsRequest) (*ceremonyv1.ListInvitationsResponse, error) {
	recs, err := s.c.Invitations(ctx)
	if err != nil {
		return nil, err
	}
	out := &ceremonyv1.ListInvitationsResponse{}
	for _, r := range recs {
		out.Invitations = append(out.Invitations, s.invitation(r))
	}
	return out, nil
}

func (s *Service) CancelInvitation(ctx context.Context, req *ceremonyv1.CancelInvitationRequest) (*ceremonyv1.CancelInvitationResponse, error) {
	// What cannot be an id is refused before the invitations are read.
	if err := rpc.CheckPrefix("invitation", req.GetId()); err != nil {
		return nil, err
	}
	recs, err := s.c.Invitations(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = hex.EncodeToString(r.ID[:])
	}
	i, err := rpc.ResolvePrefix("invitation", req.GetId(), ids)
	if err != nil {
		return nil, err
	}
	rec, err := s.c.Cancel(ctx, recs[i].ID)
	if err != nil {
		return nil, err
	}
	return &ceremonyv1.CancelInvitationResponse{Invitation: s.invitation(rec)}, nil
}

func (s *Service) AcceptInvitation(ctx context.Context, req *ceremonyv1.AcceptInvitationRequest) (*ceremonyv1.AcceptInvitationResponse, error) {
	rec, err := s.c.Accept(ctx, req.GetCode(), req.GetNickname())
	if err != nil {
		return nil, markUnreachable(err)
	}
	return &ceremonyv1.AcceptInvitationResponse{Ceremony: toProto(rec)}, nil
}

func (s *Service) DeclineInvitation(ctx context.Context, req *ceremonyv1.DeclineInvitationRequest) (*ceremonyv1.DeclineInvitationResponse, error) {
	rec, err := s.c.Decline(ctx, req.GetCode())
	if err != nil {
		return nil, markUnreachable(err)
	}
	return &ceremonyv1.DeclineInvitationResponse{Ceremony: toProto(rec)}, nil
}

// markUnreachable marks an inviter that could not be reached as a peer
// failure, not the daemon's.
func markUnreachable(err error) error {
	if errors.Is(err, ceremony.ErrUnreachable) {
		return rpc.PeerUnreachable(err)
	}
	return err
}

func (s *Service) ListCeremonies(ctx context.Context, _ *ceremonyv1.ListCeremoniesRequest) (*ceremonyv1.ListCeremoniesResponse, error) {
	recs, err := s.c.Records(ctx)
	if err != nil {
		return nil, err
	}
	out := &ceremonyv1.ListCeremoniesResponse{}
	for _, r := range recs {
		out.Ceremonies = append(out.Ceremonies, toProto(r))
	}
	return out, nil
}

func (s *Service) GetCeremony(ctx context.Context, req *ceremonyv1.GetCeremonyRequest) (*ceremonyv1.GetCeremonyResponse, error) {
	if err := rpc.CheckPrefix("ceremony", req.GetId()); err != nil {
		return nil, err
	}
	recs, err := s.c.Records(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID.String()
	}
	i, err := rpc.ResolvePrefix("ceremony", req.GetId(), ids)
	if err != nil {
		return nil, err
	}
	return &ceremonyv1.GetCeremonyResponse{Ceremony: toProto(recs[i])}, nil
}

func (s *Service) WatchCeremonies(_ *ceremonyv1.WatchCeremoniesRequest, stream ceremonyv1.CeremonyService_WatchCeremoniesServer) error {
	ctx := stream.Context()
	ch := s.c.Watch(ctx)
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watcher fell behind; list and watch again: %w", core.ErrResourceExhausted)
			}
			if err := stream.Send(toProto(&r)); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *Service) invitation(r *ceremony.InvitationRecord) *ceremonyv1.Invitation {
	st := ceremonyv1.InvitationState(r.State)
	if r.Expired(s.clock.Now()) {
		st = ceremonyv1.InvitationState_INVITATION_STATE_EXPIRED
	}
	out := &ceremonyv1.Invitation{
		Id: hex.EncodeToString(r.ID[:]), State: st, Created: timestamppb.New(r.Created),
		Expires: timestamppb.New(r.Expires), Message: r.Message,
	}
	if r.State != ceremony.InvitationPending {
		out.InviteeDeviceId = hexOrEmpty(r.Invitee[:])
		out.CeremonyId = hexOrEmpty(r.Ceremony[:])
		out.ContextId = hexOrEmpty(r.Context[:])
		out.Resolved = timestamppb.New(r.Resolved)
	}
	return out
}

func hexOrEmpty(b []byte) string {
	for _, x := range b {
		if x != 0 {
			return hex.EncodeToString(b)
		}
	}
	return ""
}

func toProto(r *ceremony.Record) *ceremonyv1.Ceremony {
	return &ceremonyv1.Ceremony{
		Id: r.ID.String(), Operation: r.Operation, Role: r.Role, PeerDeviceId: r.Peer.String(),
		InvitationId: hex.EncodeToString(r.Invitation[:]), State: ceremonyv1.CeremonyState(r.State),
		Reason: r.Reason, Detail: strings.ToValidUTF8(r.Detail, "?"), ContextId: hexOrEmpty(r.Context[:]),
		Confirmed: r.Confirmed, Started: timestamppb.New(r.Started), Updated: timestamppb.New(r.Updated),
	}
}
