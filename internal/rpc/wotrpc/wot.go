// Package wotrpc adapts the web of trust and capability tokens
// (internal/wot) to aura.wot.v1.TrustService.
package wotrpc

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	wotv1 "github.com/aura-p2p/aura/api/proto/aura/wot/v1"
	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/wot"
)

// Trust is what the service needs of the web of trust.
type Trust interface {
	SetTrust(ctx context.Context, to core.DeviceID, level wot.Level, share []core.ContextID, shareAll bool) (wot.TrustEdge, error)
	Edges() []wot.TrustEdge
	Compute(from, to core.DeviceID, maxHops int) (wot.Level, wot.Path)
	Authorize(from, to core.DeviceID, min wot.Level, maxHops int) wot.Decision
	Issue(g wot.Grant) (*wot.Token, error)
	Attenuate(raw []byte, g wot.Grant) (*wot.Token, error)
	Verify(raw []byte) (wot.Verified, error)
	Revoke(ctx context.Context, block core.Hash) (wot.Revocation, error)
	Now() time.Time
	Authority() core.AuthorityID
}

// Contacts resolves contact names and id prefixes.
type Contacts interface {
	FindContact(ctx context.Context, ref string) (*ceremony.Contact, error)
	FindDevice(ctx context.Context, ref string) (core.DeviceID, error)
}

// Service implements TrustService.
type Service struct {
	wotv1.UnsafeTrustServiceServer
	t    Trust
	c    Contacts
	self core.DeviceID
}

// New returns the service.
func New(t Trust, c Contacts, self core.DeviceID) *Service { return &Service{t: t, c: c, self: self} }

// Register adds the service to g.
func (s *Service) Register(g *grpc.Server) { wotv1.RegisterTrustServiceServer(g, s) }

// Permissions of the service's methods: stating trust and issuing or
// revoking authority write; queries read.
func Permissions() rpc.Permissions {
	return rpc.Permissions{
		wotv1.TrustService_SetTrust_FullMethodName:       rpc.Write,
		wotv1.TrustService_ListTrust_FullMethodName:      rpc.Read,
		wotv1.TrustService_ComputeTrust_FullMethodName:   rpc.Read,
		wotv1.TrustService_Authorize_FullMethodName:      rpc.Read,
		wotv1.TrustService_IssueToken_FullMethodName:     rpc.Write,
		wotv1.TrustService_AttenuateToken_FullMethodName: rpc.Write,
		wotv1.TrustService_InspectToken_FullMethodName:   rpc.Read,
		wotv1.TrustService_VerifyToken_FullMethodName:    rpc.Read,
		wotv1.TrustService_RevokeToken_FullMethodName:    rpc.Write,
	}
}

// checkRef refuses an empty contact reference. The contact lookup matches a
// reference against nicknames first, and a contact without one has the empty
// nickname, so "" (or a bare "context/") would name the unnamed contact
// when there is just one.
func checkRef(what, ref string) error {
	if strings.TrimPrefix(ref, "context/") == "" {
		return fmt.Errorf("no %s given: %w", what, core.ErrInvalidArgument)
	}
	return nil
}

// device resolves "self", a device id (or peer id), or a contact.
func (s *Service) device(ctx context.Context, what, ref string) (core.DeviceID, error) {
	if err := checkRef(what, ref); err != nil {
		return core.DeviceID{}, err
	}
	if ref == "self" {
		return s.self, nil
	}
	if d, err := core.ParseDevice(ref); err == nil {
		return d, nil
	}
	d, err := s.c.FindDevice(ctx, ref)
	if err != nil {
		return core.DeviceID{}, fmt.Errorf("%s: %w", what, err)
	}
	return d, nil
}

// level checks the wire's int32 before converting: wot.Level is a byte, so
// an unknown value such as 256 would otherwise wrap to a valid level.
func level(l wotv1.TrustLevel) (wot.Level, error) {
	if l < 0 || l > wotv1.TrustLevel(wot.LevelFull) {
		return 0, fmt.Errorf("trust level %d: want none, low, medium, high or full: %w", l, core.ErrInvalidArgument)
	}
	return wot.Level(l), nil
}

func hops(h uint32) (int, error) {
	if h > wot.DefaultMaxHops {
		return 0, fmt.Errorf("max hops %d: at most %d: %w", h, wot.DefaultMaxHops, core.ErrInvalidArgument)
	}
	return int(h), nil
}

func edge(e wot.TrustEdge) *wotv1.TrustEdge {
	return &wotv1.TrustEdge{FromDeviceId: e.From.String(), ToDeviceId: e.To.String(), Level: wotv1.TrustLevel(e.Level), Seq: e.Seq}
}

func path(p wot.Path) []string {
	out := make([]string, len(p))
	for i, d := range p {
		out[i] = d.String()
	}
	return out
}

// SetTrust checks the request's own fields before it looks up any contact.
func (s *Service) SetTrust(ctx context.Context, req *wotv1.SetTrustRequest) (*wotv1.SetTrustResponse, error) {
	l, err := level(req.GetLevel())
	if err != nil {
		return nil, err
	}
	if req.GetShareAll() && len(req.GetShareWith()) > 0 {
		return nil, fmt.Errorf("share_with and share_all together: %w", core.ErrInvalidArgument)
	}
	for _, ref := range req.GetShareWith() {
		if err := checkRef("contact to share with", ref); err != nil {
			return nil, err
		}
	}
	to, err := s.device(ctx, "trusted device", req.GetTo())
	if err != nil {
		return nil, err
	}
	var share []core.ContextID
	for _, ref := range req.GetShareWith() {
		c, err := s.c.FindContact(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("share with: %w", err)
		}
		share = append(share, c.Context)
	}
	e, err := s.t.SetTrust(ctx, to, l, share, req.GetShareAll())
	if err != nil {
		return nil, err
	}
	out := &wotv1.SetTrustResponse{Edge: edge(e)}
	for _, c := range share {
		out.SharedContexts = append(out.SharedContexts, c.String())
	}
	return out, nil
}

func (s *Service) ListTrust(context.Context, *wotv1.ListTrustRequest) (*wotv1.ListTrustResponse, error) {
	out := &wotv1.ListTrustResponse{}
	for _, e := range s.t.Edges() {
		out.Edges = append(out.Edges, edge(e))
	}
	return out, nil
}

func (s *Service) ComputeTrust(ctx context.Context, req *wotv1.ComputeTrustRequest) (*wotv1.ComputeTrustResponse, error) {
	h, err := hops(req.GetMaxHops())
	if err != nil {
		return nil, err
	}
	from, err := s.device(ctx, "from", req.GetFrom())
	if err != nil {
		return nil, err
	}
	to, err := s.device(ctx, "to", req.GetTo())
	if err != nil {
		return nil, err
	}
	l, p := s.t.Compute(from, to, h)
	return &wotv1.ComputeTrustResponse{Level: wotv1.TrustLevel(l), Path: path(p)}, nil
}

func (s *Service) Authorize(ctx context.Context, req *wotv1.AuthorizeRequest) (*wotv1.AuthorizeResponse, error) {
	min, err := level(req.GetMinLevel())
	if err != nil {
		return nil, err
	}
	h, err := hops(req.GetMaxHops())
	if err != nil {
		return nil, err
	}
	from, err := s.device(ctx, "from", req.GetFrom())
	if err != nil {
		return nil, err
	}
	to, err := s.device(ctx, "to", req.GetTo())
	if err != nil {
		return nil, err
	}
	switch d := s.t.Authorize(from, to, min, h).(type) {
	case wot.Allow:
		return &wotv1.AuthorizeResponse{Allowed: true, Level: wotv1.TrustLevel(d.Level), Path: path(d.Path)}, nil
	case wot.Deny:
		return &wotv1.AuthorizeResponse{Level: wotv1.TrustLevel(d.Computed), Path: path(d.Path), Reason: d.Reason}, nil
	}
	return nil, fmt.Errorf("unknown decision: %w", core.ErrInternal)
}

// grant builds a grant from request fields; an unset expiry is a day. The
// holder is looked up last, once the rest of the request is known good.
func (s *Service) grant(ctx context.Context, holder string, caps []string, scope string, notAfter *timestamppb.Timestamp) (wot.Grant, error) {
	cs, err := wot.NewCapabilities(caps...)
	if err != nil {
		return wot.Grant{}, err
	}
	if cs.Len() == 0 {
		return wot.Grant{}, fmt.Errorf("a token needs at least one capability: %w", core.ErrInvalidArgument)
	}
	if scope == "" {
		scope = "any"
	}
	sc, err := wot.ParseScope(scope)
	if err != nil {
		return wot.Grant{}, err
	}
	exp := s.t.Now().Add(24 * time.Hour)
	if notAfter != nil {
		if err := notAfter.CheckValid(); err != nil {
			return wot.Grant{}, fmt.Errorf("not_after: %v: %w", err, core.ErrInvalidArgument)
		}
		exp = notAfter.AsTime()
	}
	if !exp.After(s.t.Now()) {
		return wot.Grant{}, fmt.Errorf("not_after %s is in the past: %w", exp.UTC().Format(time.RFC3339), core.ErrInvalidArgument)
	}
	h, err := s.device(ctx, "holder", holder)
	if err != nil {
		return wot.Grant{}, err
	}
	return wot.Grant{Holder: h, Caps: cs, Scope: sc, NotAfter: exp.Unix()}, nil
}

func tokenResponse(t *wot.Token) *wotv1.TokenResponse {
	out := &wotv1.TokenResponse{Token: t.Encode(), Text: base64.RawURLEncoding.EncodeToString(t.Encode()), Hash: t.Hash().String()}
	for _, b := range t.Blocks() {
		pb := &wotv1.Block{
			Index: uint32(b.Index), Id: b.ID.String(), HolderDeviceId: b.Holder.String(), Capabilities: b.Caps.Names(),
			Scope: b.Scope.String(), NotAfter: timestamppb.New(time.Unix(b.NotAfter, 0)),
		}
		if b.Index == 0 {
			pb.IssuerAuthorityId, pb.Epoch = b.Issuer.String(), uint64(b.Epoch)
		} else {
			pb.Prev = b.Prev.String()
		}
		out.Blocks = append(out.Blocks, pb)
	}
	return out
}

func (s *Service) IssueToken(ctx context.Context, req *wotv1.IssueTokenRequest) (*wotv1.TokenResponse, error) {
	g, err := s.grant(ctx, req.GetHolder(), req.GetCapabilities(), req.GetScope(), req.GetNotAfter())
	if err != nil {
		return nil, err
	}
	t, err := s.t.Issue(g)
	if err != nil {
		return nil, err
	}
	return tokenResponse(t), nil
}

func (s *Service) AttenuateToken(ctx context.Context, req *wotv1.AttenuateTokenRequest) (*wotv1.TokenResponse, error) {
	g, err := s.grant(ctx, req.GetHolder(), req.GetCapabilities(), req.GetScope(), req.GetNotAfter())
	if err != nil {
		return nil, err
	}
	t, err := s.t.Attenuate(req.GetToken(), g)
	if err != nil {
		return nil, err
	}
	return tokenResponse(t), nil
}

func (s *Service) InspectToken(_ context.Context, req *wotv1.InspectTokenRequest) (*wotv1.TokenResponse, error) {
	t, err := wot.DecodeToken(req.GetToken())
	if err != nil {
		return nil, err
	}
	return tokenResponse(t), nil
}

func (s *Service) VerifyToken(_ context.Context, req *wotv1.VerifyTokenRequest) (*wotv1.VerifyTokenResponse, error) {
	v, err := s.t.Verify(req.GetToken())
	if err != nil {
		return nil, err
	}
	out := &wotv1.VerifyTokenResponse{
		IssuerAuthorityId: v.Issuer.String(), HolderDeviceId: v.Holder.String(), Capabilities: v.Caps.Names(),
		Scope: v.Scope.String(), NotAfter: timestamppb.New(time.Unix(v.NotAfter, 0)), Depth: uint32(v.Depth),
	}
	for _, id := range v.BlockIDs {
		out.BlockIds = append(out.BlockIds, id.String())
	}
	return out, nil
}

func (s *Service) RevokeToken(ctx context.Context, req *wotv1.RevokeTokenRequest) (*wotv1.RevokeTokenResponse, error) {
	t, err := wot.DecodeToken(req.GetToken())
	if err != nil {
		return nil, err
	}
	if t.Issuer() != s.t.Authority() {
		return nil, fmt.Errorf("token issued by authority %s; only its issuer can revoke it: %w", t.Issuer(), core.ErrFailedPrecondition)
	}
	blocks := t.Blocks()
	if int(req.GetBlock()) >= len(blocks) {
		return nil, fmt.Errorf("block %d of a %d-block token: %w", req.GetBlock(), len(blocks), core.ErrInvalidArgument)
	}
	r, err := s.t.Revoke(ctx, blocks[req.GetBlock()].ID)
	if err != nil {
		return nil, err
	}
	return &wotv1.RevokeTokenResponse{IssuerAuthorityId: r.Issuer.String(), BlockId: r.Block.String()}, nil
}
