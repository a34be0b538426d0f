// Package treerpc adapts internal/account to aura.tree.v1.TreeService: the
// operator's view of the account's commitment tree and of its group key, the
// enrollment of a new device (an invitation made on a device of the account,
// joined with its code on the new one), a key update from this device, and
// the removal of another device.
package treerpc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	treev1 "github.com/aura-p2p/aura/api/proto/aura/tree/v1"
	"github.com/aura-p2p/aura/internal/account"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/tree"
)

// Account is what the service needs of the account.
type Account interface {
	Show(ctx context.Context) (*account.View, error)
	// Invite makes a device invitation; expires 0 is the account's default.
	Invite(ctx context.Context, expires time.Duration) (*account.Invitation, error)
	// Join runs the enrollment ceremony on this (new) device.
	Join(ctx context.Context, code string) (*account.View, error)
	// Key names the current epoch's group key without revealing it.
	Key(ctx context.Context) (*account.KeyInfo, error)
	// UpdatePath issues an UpdatePath op from this device.
	UpdatePath(ctx context.Context) (*account.View, error)
	// RemoveDevice removes another device's leaf, then rotates the keys.
	RemoveDevice(ctx context.Context, device core.DeviceID) (*account.View, error)
}

// maxCodeLen is the longest code the ceremony's parser accepts; a longer one
// is refused here, before the account is asked.
const maxCodeLen = 4096

// Service implements TreeService.
type Service struct {
	treev1.UnsafeTreeServiceServer
	a Account
}

// New returns the service.
func New(a Account) *Service { return &Service{a: a} }

// Register adds the service to g.
func (s *Service) Register(g *grpc.Server) { treev1.RegisterTreeServiceServer(g, s) }

// Permissions of the service's methods. A device invitation's code makes its
// holder a device of the account, with every key and fact that gives, and
// joining moves the daemon itself to another account and restarts it: both
// are control of the daemon, as Shutdown and Backup are, so admin. Removing
// a device takes it, and whoever runs it, out of the account, so admin too.
// The key's name reveals nothing of the key, so read; an UpdatePath changes
// the account's keys but no one's membership, a write like any other fact.
func Permissions() rpc.Permissions {
	return rpc.Permissions{
		treev1.TreeService_Show_FullMethodName:         rpc.Read,
		treev1.TreeService_InviteDevice_FullMethodName: rpc.Admin,
		treev1.TreeService_JoinAccount_FullMethodName:  rpc.Admin,
		treev1.TreeService_Key_FullMethodName:          rpc.Read,
		treev1.TreeService_UpdatePath_FullMethodName:   rpc.Write,
		treev1.TreeService_RemoveDevice_FullMethodName: rpc.Admin,
	}
}

func (s *Service) Show(ctx context.Context, _ *treev1.ShowRequest) (*treev1.ShowResponse, error) {
	v, err := s.a.Show(ctx)
	if err != nil {
		return nil, err
	}
	return &treev1.ShowResponse{View: viewToProto(v)}, nil
}

func (s *Service) InviteDevice(ctx context.Context, req *treev1.InviteDeviceRequest) (*treev1.InviteDeviceResponse, error) {
	var exp time.Duration
	if d := req.GetExpires(); d != nil {
		if err := d.CheckValid(); err != nil {
			return nil, fmt.Errorf("expires: %v: %w", err, core.ErrInvalidArgument)
		}
		if exp = d.AsDuration(); exp < account.MinExpiry || exp > account.MaxExpiry {
			return nil, fmt.Errorf("expires %s is out of range: want %s to %s: %w", exp, account.MinExpiry, account.MaxExpiry, core.ErrInvalidArgument)
		}
	}
	inv, err := s.a.Invite(ctx, exp)
	if err != nil {
		return nil, err
	}
	return &treev1.InviteDeviceResponse{
		InvitationId: hex.EncodeToString(inv.ID[:]), Code: inv.Code, ExpiresAt: timestamppb.New(inv.Expires),
	}, nil
}

func (s *Service) JoinAccount(ctx context.Context, req *treev1.JoinAccountRequest) (*treev1.JoinAccountResponse, error) {
	code := req.GetCode()
	if strings.TrimSpace(code) == "" {
		return nil, fmt.Errorf("no invitation code given: %w", core.ErrInvalidArgument)
	}
	if len(code) > maxCodeLen {
		return nil, fmt.Errorf("invitation code is %d bytes; a device invitation code has at most %d: %w", len(code), maxCodeLen, core.ErrInvalidArgument)
	}
	// The code passes as given: the ceremony's parser trims it and says
	// what is wrong with it.
	v, err := s.a.Join(ctx, code)
	if err != nil {
		return nil, markUnreachable(err)
	}
	return &treev1.JoinAccountResponse{View: viewToProto(v)}, nil
}

func (s *Service) Key(ctx context.Context, _ *treev1.KeyRequest) (*treev1.KeyResponse, error) {
	k, err := s.a.Key(ctx)
	if err != nil {
		return nil, err
	}
	return &treev1.KeyResponse{Epoch: k.Epoch, Root: k.Root.String(), Fingerprint: hex.EncodeToString(k.Fingerprint[:])}, nil
}

func (s *Service) UpdatePath(ctx context.Context, _ *treev1.UpdatePathRequest) (*treev1.UpdatePathResponse, error) {
	v, err := s.a.UpdatePath(ctx)
	if err != nil {
		return nil, err
	}
	return &treev1.UpdatePathResponse{View: viewToProto(v)}, nil
}

func (s *Service) RemoveDevice(ctx context.Context, req *treev1.RemoveDeviceRequest) (*treev1.RemoveDeviceResponse, error) {
	d, err := parseDeviceID(req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	v, err := s.a.RemoveDevice(ctx, d)
	if err != nil {
		return nil, err
	}
	return &treev1.RemoveDeviceResponse{View: viewToProto(v)}, nil
}

// parseDeviceID takes a device id in full, 64 hex digits: removal is not
// undone, so a prefix, which could name another device than the one meant
// once more devices join, is for the client to resolve against the list it
// showed.
func parseDeviceID(s string) (core.DeviceID, error) {
	if s == "" {
		return core.DeviceID{}, fmt.Errorf("no device id given: %w", core.ErrInvalidArgument)
	}
	h, err := core.ParseHash(s)
	if err != nil {
		return core.DeviceID{}, fmt.Errorf("device id %s: %w", rpc.QuoteInput(s), err)
	}
	return core.DeviceID(h), nil
}

// markUnreachable marks an inviter that could not be reached as a peer
// failure, not the daemon's, as the contact ceremony's adapter does.
func markUnreachable(err error) error {
	if errors.Is(err, account.ErrUnreachable) {
		return rpc.PeerUnreachable(err)
	}
	return err
}

func viewToProto(v *account.View) *treev1.TreeView {
	out := &treev1.TreeView{
		AuthorityId: v.Authority.String(), Epoch: v.Epoch, RootCommitment: v.Root.String(),
		Policy: v.Policy, Required: uint32(v.Required),
	}
	for _, d := range v.Devices {
		out.Devices = append(out.Devices, &treev1.Device{
			Leaf: uint32(d.Leaf), DeviceId: d.Device.String(), Role: d.Role.String(),
			HpkeKey: hex.EncodeToString(d.HPKE[:]), Self: d.Self,
		})
	}
	for _, op := range v.Ops {
		o := &treev1.TreeOp{
			OpId: op.ID.String(), Kind: op.Kind.String(), AuthorLeaf: uint32(op.Author),
			ParentEpoch: op.Parent.Epoch, ParentCommitment: op.Parent.Commitment.String(),
			// A reason may quote what a peer's op held; a proto string
			// must be UTF-8, or the whole view would fail to marshal.
			Status: op.Status.String(), Reason: strings.ToValidUTF8(op.Reason, "?"),
		}
		if op.By != (tree.OpID{}) {
			o.SupersededBy = op.By.String()
		}
		if op.Reproposed != nil {
			o.ReproposedAs = op.Reproposed.String()
		}
		out.Ops = append(out.Ops, o)
	}
	return out
}
