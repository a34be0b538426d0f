package wotrpc

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	wotv1 "github.com/aura-p2p/aura/api/proto/aura/wot/v1"
	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc/rpctest"
	"github.com/aura-p2p/aura/internal/wot"
)

// fakeDomain is the web of trust and the contact directory. It records what
// reaches it; the method named failIn fails with err, the others succeed.
// Now and Authority are this device's clock and identity, which the adapter
// reads to check a request, so they do not count as reaching the domain.
type fakeDomain struct {
	failIn string
	err    error
	calls  int

	decision wot.Decision

	to       core.DeviceID
	from     core.DeviceID
	level    wot.Level
	share    []core.ContextID
	shareAll bool
	hops     int
	grant    wot.Grant
	raw      []byte
	block    core.Hash
}

func (f *fakeDomain) fail(method string) error {
	f.calls++
	if method == f.failIn {
		return f.err
	}
	return nil
}

func (f *fakeDomain) SetTrust(_ context.Context, to core.DeviceID, l wot.Level, share []core.ContextID, shareAll bool) (wot.TrustEdge, error) {
	f.to, f.level, f.share, f.shareAll = to, l, share, shareAll
	if err := f.fail("SetTrust"); err != nil {
		return wot.TrustEdge{}, err
	}
	return wot.TrustEdge{From: self, To: to, Level: l, Seq: 1}, nil
}

func (f *fakeDomain) Edges() []wot.TrustEdge {
	f.calls++
	return []wot.TrustEdge{{From: self, To: alice, Level: wot.LevelHigh, Seq: 2}}
}

func (f *fakeDomain) Compute(from, to core.DeviceID, maxHops int) (wot.Level, wot.Path) {
	f.calls++
	f.from, f.to, f.hops = from, to, maxHops
	return wot.LevelMedium, wot.Path{from, to}
}

func (f *fakeDomain) Authorize(from, to core.DeviceID, minLevel wot.Level, maxHops int) wot.Decision {
	f.calls++
	f.from, f.to, f.level, f.hops = from, to, minLevel, maxHops
	return f.decision
}

// Issue and Attenuate sign a real token for the grant: the adapter's job is
// to pass the grant on and describe what comes back, not to delegate.
func (f *fakeDomain) Issue(g wot.Grant) (*wot.Token, error) {
	f.grant = g
	if err := f.fail("Issue"); err != nil {
		return nil, err
	}
	return wot.Issue(issuerKey, issuer, 0, g, rand.Reader)
}

func (f *fakeDomain) Attenuate(raw []byte, g wot.Grant) (*wot.Token, error) {
	f.raw, f.grant = raw, g
	if err := f.fail("Attenuate"); err != nil {
		return nil, err
	}
	return wot.Issue(issuerKey, issuer, 0, g, rand.Reader)
}

func (f *fakeDomain) Verify(raw []byte) (wot.Verified, error) {
	f.raw = raw
	if err := f.fail("Verify"); err != nil {
		return wot.Verified{}, err
	}
	caps, _ := wot.NewCapabilities("read")
	return wot.Verified{Issuer: issuer, Grant: wot.Grant{Holder: alice, Caps: caps, NotAfter: now.Unix() + 60}, Depth: 1, BlockIDs: []core.Hash{{0x42}}}, nil
}

func (f *fakeDomain) Revoke(_ context.Context, block core.Hash) (wot.Revocation, error) {
	f.block = block
	if err := f.fail("Revoke"); err != nil {
		return wot.Revocation{}, err
	}
	return wot.Revocation{Issuer: issuer, Block: block}, nil
}

func (f *fakeDomain) Now() time.Time              { return now }
func (f *fakeDomain) Authority() core.AuthorityID { return issuer }

// The directory knows one contact, alice; any other name is no contact.
func (f *fakeDomain) FindContact(_ context.Context, ref string) (*ceremony.Contact, error) {
	if err := f.fail("FindContact"); err != nil {
		return nil, err
	}
	if ref != "alice" {
		return nil, fmt.Errorf("%q: %w", ref, ceremony.ErrNoContact)
	}
	return &ceremony.Contact{Context: aliceCtx, Device: alice, Nickname: "alice"}, nil
}

func (f *fakeDomain) FindDevice(_ context.Context, ref string) (core.DeviceID, error) {
	if err := f.fail("FindDevice"); err != nil {
		return core.DeviceID{}, err
	}
	if ref != "alice" {
		return core.DeviceID{}, fmt.Errorf("%q: %w", ref, ceremony.ErrNoContact)
	}
	return alice, nil
}

var (
	now       = time.Unix(1_800_000_000, 0)
	self      = core.DeviceID{0x01}
	alice     = core.DeviceID{0x02}
	aliceCtx  = core.ContextID{0x0c}
	issuerKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	issuer    = core.AuthorityID{0xa1}
)

// tokens returns a token this device's authority issued to holderKey's
// device, and the same token attenuated by that holder to alice.
func tokens(t *testing.T) (root, chain *wot.Token) {
	t.Helper()
	holderKey := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 1))
	var holder core.DeviceID
	copy(holder[:], holderKey.Public().(ed25519.PublicKey))
	caps, err := wot.NewCapabilities("read", "write")
	if err != nil {
		t.Fatal(err)
	}
	root, err = wot.Issue(issuerKey, issuer, 0, wot.Grant{Holder: holder, Caps: caps, NotAfter: now.Unix() + 3600}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	read, err := wot.NewCapabilities("read")
	if err != nil {
		t.Fatal(err)
	}
	chain, err = root.Attenuate(holderKey, wot.Grant{Holder: alice, Caps: read, NotAfter: now.Unix() + 60}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return root, chain
}

// Every method: input refused before the web of trust or the contacts see
// it, and their errors, each with the code the caller gets.
func TestValidationAndCodes(t *testing.T) {
	ctx := context.Background()
	root, chain := tokens(t)
	foreign, err := wot.Issue(issuerKey, core.AuthorityID{0xf0}, 0, wot.Grant{Holder: alice, Caps: root.Blocks()[0].Caps, NotAfter: now.Unix() + 60}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	setTrust := func(req *wotv1.SetTrustRequest) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.SetTrust(ctx, req)
			return err
		}
	}
	compute := func(req *wotv1.ComputeTrustRequest) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.ComputeTrust(ctx, req)
			return err
		}
	}
	authorize := func(req *wotv1.AuthorizeRequest) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.Authorize(ctx, req)
			return err
		}
	}
	issue := func(req *wotv1.IssueTokenRequest) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.IssueToken(ctx, req)
			return err
		}
	}
	attenuate := func(req *wotv1.AttenuateTokenRequest) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.AttenuateToken(ctx, req)
			return err
		}
	}
	inspect := func(token []byte) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.InspectToken(ctx, &wotv1.InspectTokenRequest{Token: token})
			return err
		}
	}
	verify := func(s *Service) error {
		_, err := s.VerifyToken(ctx, &wotv1.VerifyTokenRequest{Token: chain.Encode()})
		return err
	}
	revoke := func(token []byte, block uint32) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.RevokeToken(ctx, &wotv1.RevokeTokenRequest{Token: token, Block: block})
			return err
		}
	}
	listTrust := func(s *Service) error {
		_, err := s.ListTrust(ctx, &wotv1.ListTrustRequest{})
		return err
	}
	high := wotv1.TrustLevel_TRUST_LEVEL_HIGH
	read := []string{"read"}
	past := timestamppb.New(now.Add(-time.Second))
	tests := []struct {
		name      string
		call      func(s *Service) error
		failIn    string // the fake's method that fails with domainErr
		domainErr error
		code      codes.Code
		reaches   bool
	}{
		{"set: no device", setTrust(&wotv1.SetTrustRequest{Level: high}), "", nil, codes.InvalidArgument, false},
		{"set: bare context namespace", setTrust(&wotv1.SetTrustRequest{To: "context/", Level: high}), "", nil, codes.InvalidArgument, false},
		{"set: level past full, refused before the contact lookup", setTrust(&wotv1.SetTrustRequest{To: "alice", Level: 5}), "", nil, codes.InvalidArgument, false},
		{"set: level wrapping to none as a byte", setTrust(&wotv1.SetTrustRequest{To: alice.String(), Level: 256}), "", nil, codes.InvalidArgument, false},
		{"set: negative level", setTrust(&wotv1.SetTrustRequest{To: "alice", Level: -1}), "", nil, codes.InvalidArgument, false},
		{"set: share_with and share_all", setTrust(&wotv1.SetTrustRequest{To: "alice", Level: high, ShareWith: []string{"alice"}, ShareAll: true}), "", nil, codes.InvalidArgument, false},
		{"set: empty contact to share with", setTrust(&wotv1.SetTrustRequest{To: "alice", Level: high, ShareWith: []string{"alice", ""}}), "", nil, codes.InvalidArgument, false},
		{"set: unknown device", setTrust(&wotv1.SetTrustRequest{To: "dave", Level: high}), "", ceremony.ErrNoContact, codes.NotFound, true},
		{"set: ambiguous device", setTrust(&wotv1.SetTrustRequest{To: "aabbccdd", Level: high}), "FindDevice", fmt.Errorf("names 2 contacts: %w", core.ErrInvalidArgument), codes.InvalidArgument, true},
		{"set: unknown contact to share with", setTrust(&wotv1.SetTrustRequest{To: "alice", Level: high, ShareWith: []string{"dave"}}), "", ceremony.ErrNoContact, codes.NotFound, true},
		{"set: trust in itself", setTrust(&wotv1.SetTrustRequest{To: "self", Level: high}), "SetTrust", fmt.Errorf("self edge: %w", core.ErrInvalidArgument), codes.InvalidArgument, true},
		{"set: journal closed", setTrust(&wotv1.SetTrustRequest{To: alice.String(), Level: high}), "SetTrust", fmt.Errorf("commit: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"set: ok", setTrust(&wotv1.SetTrustRequest{To: "alice", Level: high, ShareWith: []string{"alice"}}), "", nil, codes.OK, true},

		{"list: ok", listTrust, "", nil, codes.OK, true},

		{"compute: too many hops", compute(&wotv1.ComputeTrustRequest{From: "self", To: "alice", MaxHops: wot.DefaultMaxHops + 1}), "", nil, codes.InvalidArgument, false},
		{"compute: no from", compute(&wotv1.ComputeTrustRequest{To: "alice"}), "", nil, codes.InvalidArgument, false},
		{"compute: no to", compute(&wotv1.ComputeTrustRequest{From: "self"}), "", nil, codes.InvalidArgument, false},
		{"compute: unknown device", compute(&wotv1.ComputeTrustRequest{From: "self", To: "dave"}), "", ceremony.ErrNoContact, codes.NotFound, true},
		{"compute: contacts unreadable", compute(&wotv1.ComputeTrustRequest{From: "alice", To: "self"}), "FindDevice", fmt.Errorf("contact state: %w", core.ErrDataLoss), codes.DataLoss, true},
		{"compute: ok", compute(&wotv1.ComputeTrustRequest{From: "self", To: "alice", MaxHops: wot.DefaultMaxHops}), "", nil, codes.OK, true},

		{"authorize: unknown level", authorize(&wotv1.AuthorizeRequest{From: "self", To: "alice", MinLevel: 7}), "", nil, codes.InvalidArgument, false},
		{"authorize: level wrapping to low as a byte", authorize(&wotv1.AuthorizeRequest{From: "self", To: alice.String(), MinLevel: 257}), "", nil, codes.InvalidArgument, false},
		{"authorize: too many hops", authorize(&wotv1.AuthorizeRequest{From: "self", To: "alice", MaxHops: 1 << 31}), "", nil, codes.InvalidArgument, false},
		{"authorize: no to", authorize(&wotv1.AuthorizeRequest{From: "self", MinLevel: high}), "", nil, codes.InvalidArgument, false},
		{"authorize: unknown device", authorize(&wotv1.AuthorizeRequest{From: "dave", To: "self"}), "", ceremony.ErrNoContact, codes.NotFound, true},
		{"authorize: ok", authorize(&wotv1.AuthorizeRequest{From: "self", To: "alice", MinLevel: high}), "", nil, codes.OK, true},

		{"issue: no capabilities, refused before the holder lookup", issue(&wotv1.IssueTokenRequest{Holder: "alice"}), "", nil, codes.InvalidArgument, false},
		{"issue: malformed capability", issue(&wotv1.IssueTokenRequest{Holder: "alice", Capabilities: []string{"Read"}}), "", nil, codes.InvalidArgument, false},
		{"issue: empty capability", issue(&wotv1.IssueTokenRequest{Holder: "alice", Capabilities: []string{""}}), "", nil, codes.InvalidArgument, false},
		{"issue: capability too long", issue(&wotv1.IssueTokenRequest{Holder: "alice", Capabilities: []string{strings.Repeat("r", wot.MaxCapabilityLen+1)}}), "", nil, codes.InvalidArgument, false},
		{"issue: too many capabilities", issue(&wotv1.IssueTokenRequest{Holder: "alice", Capabilities: manyCaps(wot.MaxCapabilityNames + 1)}), "", nil, codes.InvalidArgument, false},
		{"issue: malformed scope", issue(&wotv1.IssueTokenRequest{Holder: "alice", Capabilities: read, Scope: "group/1"}), "", nil, codes.InvalidArgument, false},
		{"issue: scope with a short id", issue(&wotv1.IssueTokenRequest{Holder: "alice", Capabilities: read, Scope: "context/aabb"}), "", nil, codes.InvalidArgument, false},
		{"issue: not_after not a valid time", issue(&wotv1.IssueTokenRequest{Holder: "alice", Capabilities: read, NotAfter: &timestamppb.Timestamp{Nanos: -1}}), "", nil, codes.InvalidArgument, false},
		{"issue: not_after in the past", issue(&wotv1.IssueTokenRequest{Holder: "alice", Capabilities: read, NotAfter: past}), "", nil, codes.InvalidArgument, false},
		{"issue: not_after now", issue(&wotv1.IssueTokenRequest{Holder: "alice", Capabilities: read, NotAfter: timestamppb.New(now)}), "", nil, codes.InvalidArgument, false},
		{"issue: no holder", issue(&wotv1.IssueTokenRequest{Capabilities: read}), "", nil, codes.InvalidArgument, false},
		{"issue: unknown holder", issue(&wotv1.IssueTokenRequest{Holder: "dave", Capabilities: read}), "", ceremony.ErrNoContact, codes.NotFound, true},
		{"issue: issuers unreadable", issue(&wotv1.IssueTokenRequest{Holder: "alice", Capabilities: read}), "Issue", fmt.Errorf("shared contexts: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"issue: ok", issue(&wotv1.IssueTokenRequest{Holder: "alice", Capabilities: read, Scope: "context/" + aliceCtx.String()}), "", nil, codes.OK, true},

		{"attenuate: no capabilities", attenuate(&wotv1.AttenuateTokenRequest{Token: root.Encode(), Holder: "alice"}), "", nil, codes.InvalidArgument, false},
		{"attenuate: not_after in the past", attenuate(&wotv1.AttenuateTokenRequest{Token: root.Encode(), Holder: "alice", Capabilities: read, NotAfter: past}), "", nil, codes.InvalidArgument, false},
		{"attenuate: no holder", attenuate(&wotv1.AttenuateTokenRequest{Token: root.Encode(), Capabilities: read}), "", nil, codes.InvalidArgument, false},
		{"attenuate: malformed token", attenuate(&wotv1.AttenuateTokenRequest{Token: []byte("x"), Holder: "alice", Capabilities: read}), "Attenuate", fmt.Errorf("token of 1 bytes: %w", wot.ErrTokenMalformed), codes.InvalidArgument, true},
		{"attenuate: widens", attenuate(&wotv1.AttenuateTokenRequest{Token: root.Encode(), Holder: "alice", Capabilities: []string{"admin"}}), "Attenuate", fmt.Errorf("attenuate: %w", wot.ErrTokenWidened), codes.PermissionDenied, true},
		{"attenuate: not its holder", attenuate(&wotv1.AttenuateTokenRequest{Token: chain.Encode(), Holder: "alice", Capabilities: read}), "Attenuate", wot.ErrTokenHolder, codes.PermissionDenied, true},
		{"attenuate: too deep", attenuate(&wotv1.AttenuateTokenRequest{Token: chain.Encode(), Holder: "alice", Capabilities: read}), "Attenuate", wot.ErrTokenDepth, codes.InvalidArgument, true},
		{"attenuate: ok", attenuate(&wotv1.AttenuateTokenRequest{Token: root.Encode(), Holder: "alice", Capabilities: read}), "", nil, codes.OK, true},

		{"inspect: empty", inspect(nil), "", nil, codes.InvalidArgument, false},
		{"inspect: garbage", inspect([]byte("not a token at all")), "", nil, codes.InvalidArgument, false},
		{"inspect: trailing byte", inspect(append(slices.Clone(chain.Encode()), 0)), "", nil, codes.InvalidArgument, false},
		{"inspect: cut short", inspect(chain.Encode()[:len(chain.Encode())-1]), "", nil, codes.InvalidArgument, false},
		{"inspect: oversized", inspect(make([]byte, wot.MaxTokenBytes+1)), "", nil, codes.InvalidArgument, false},
		{"inspect: ok", inspect(chain.Encode()), "", nil, codes.OK, false},

		{"verify: malformed", verify, "Verify", wot.ErrTokenMalformed, codes.InvalidArgument, true},
		{"verify: bad signature", verify, "Verify", wot.ErrTokenSignature, codes.PermissionDenied, true},
		{"verify: expired", verify, "Verify", fmt.Errorf("block 1: %w", wot.ErrTokenExpired), codes.PermissionDenied, true},
		{"verify: revoked", verify, "Verify", wot.ErrTokenRevoked, codes.PermissionDenied, true},
		{"verify: issuer rotated", verify, "Verify", wot.ErrTokenEpoch, codes.PermissionDenied, true},
		{"verify: ok", verify, "", nil, codes.OK, true},

		{"revoke: empty token", revoke(nil, 0), "", nil, codes.InvalidArgument, false},
		{"revoke: garbage", revoke([]byte{1, 1, 0}, 0), "", nil, codes.InvalidArgument, false},
		{"revoke: issued by another authority", revoke(foreign.Encode(), 0), "", nil, codes.FailedPrecondition, false},
		{"revoke: block past the end", revoke(root.Encode(), 1), "", nil, codes.InvalidArgument, false},
		{"revoke: block far past the end", revoke(chain.Encode(), 1<<32-1), "", nil, codes.InvalidArgument, false},
		{"revoke: journal closed", revoke(chain.Encode(), 1), "Revoke", fmt.Errorf("commit: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"revoke: ok", revoke(chain.Encode(), 0), "", nil, codes.OK, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeDomain{failIn: tc.failIn, err: tc.domainErr, decision: wot.Allow{Level: wot.LevelHigh}}
			err := tc.call(New(f, f, self))
			rpctest.CheckOutcome(t, err, tc.code, f.calls, tc.reaches, tc.domainErr)
		})
	}
}

func manyCaps(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("cap%d", i)
	}
	return out
}

// Devices are named by "self", a device id or a contact; what reaches the
// web of trust is the resolved device, the level and the contexts to share.
func TestSetTrustReachesTheDomain(t *testing.T) {
	tests := []struct {
		name  string
		req   *wotv1.SetTrustRequest
		to    core.DeviceID
		share []core.ContextID
	}{
		{"by contact, shared", &wotv1.SetTrustRequest{To: "alice", Level: wotv1.TrustLevel_TRUST_LEVEL_FULL, ShareWith: []string{"alice"}}, alice, []core.ContextID{aliceCtx}},
		{"by device id", &wotv1.SetTrustRequest{To: alice.String(), Level: wotv1.TrustLevel_TRUST_LEVEL_FULL}, alice, nil},
		{"self", &wotv1.SetTrustRequest{To: "self", Level: wotv1.TrustLevel_TRUST_LEVEL_FULL, ShareAll: true}, self, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeDomain{}
			resp, err := New(f, f, self).SetTrust(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if f.to != tc.to || f.level != wot.LevelFull || !slices.Equal(f.share, tc.share) || f.shareAll != tc.req.GetShareAll() {
				t.Fatalf("domain got to %s level %v share %v all %v", f.to, f.level, f.share, f.shareAll)
			}
			if resp.GetEdge().GetToDeviceId() != tc.to.String() || len(resp.GetSharedContexts()) != len(tc.share) {
				t.Fatalf("response %v", resp)
			}
		})
	}
}

// A query's devices, level and hop bound reach the web of trust; an allow
// and a deny both answer OK, with the evidence; a decision of neither kind
// is the daemon's bug.
func TestAuthorizeDecisions(t *testing.T) {
	req := &wotv1.AuthorizeRequest{From: "alice", To: "self", MinLevel: wotv1.TrustLevel_TRUST_LEVEL_MEDIUM, MaxHops: 2}
	tests := []struct {
		name     string
		decision wot.Decision
		code     codes.Code
		allowed  bool
		reason   string
	}{
		{"allow", wot.Allow{Level: wot.LevelHigh, Path: wot.Path{alice, self}}, codes.OK, true, ""},
		{"deny", wot.Deny{Reason: "too far", Computed: wot.LevelLow, Required: wot.LevelMedium, Path: wot.Path{alice, self}}, codes.OK, false, "too far"},
		{"neither", nil, codes.Internal, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeDomain{decision: tc.decision}
			resp, err := New(f, f, self).Authorize(context.Background(), req)
			rpctest.CheckOutcome(t, err, tc.code, f.calls, true, nil)
			if f.from != alice || f.to != self || f.level != wot.LevelMedium || f.hops != 2 {
				t.Fatalf("domain got %s -> %s at %v in %d hops", f.from, f.to, f.level, f.hops)
			}
			if err != nil {
				return
			}
			if resp.GetAllowed() != tc.allowed || resp.GetReason() != tc.reason || !slices.Equal(resp.GetPath(), []string{alice.String(), self.String()}) {
				t.Fatalf("response %v", resp)
			}
		})
	}
}

// A grant defaults to any scope and a day's validity, holds its
// capabilities sorted and deduplicated, and names the resolved holder.
func TestIssueTokenGrant(t *testing.T) {
	tests := []struct {
		name  string
		req   *wotv1.IssueTokenRequest
		scope string
		until int64
	}{
		{"defaults", &wotv1.IssueTokenRequest{Holder: "alice", Capabilities: []string{"write", "read", "write"}}, "any", now.Add(24 * time.Hour).Unix()},
		{"explicit", &wotv1.IssueTokenRequest{Holder: "alice", Capabilities: []string{"write", "read"}, Scope: "context/" + aliceCtx.String(), NotAfter: timestamppb.New(now.Add(time.Hour))},
			"context/" + aliceCtx.String(), now.Add(time.Hour).Unix()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeDomain{}
			resp, err := New(f, f, self).IssueToken(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			g := f.grant
			if g.Holder != alice || !slices.Equal(g.Caps.Names(), []string{"read", "write"}) || g.Scope.String() != tc.scope || g.NotAfter != tc.until {
				t.Fatalf("grant %+v (scope %s), want alice, read+write, %s, until %d", g, g.Scope, tc.scope, tc.until)
			}
			b := resp.GetBlocks()
			if len(b) != 1 || b[0].GetHolderDeviceId() != alice.String() || b[0].GetIssuerAuthorityId() != issuer.String() || b[0].GetScope() != tc.scope {
				t.Fatalf("blocks %v", b)
			}
		})
	}
}

// Attenuating and verifying hand the token's bytes to the web of trust as
// the client sent them.
func TestTokenBytesReachTheDomain(t *testing.T) {
	_, chain := tokens(t)
	f := &fakeDomain{}
	s := New(f, f, self)
	if _, err := s.AttenuateToken(context.Background(), &wotv1.AttenuateTokenRequest{Token: chain.Encode(), Holder: "self", Capabilities: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	if string(f.raw) != string(chain.Encode()) || f.grant.Holder != self {
		t.Fatalf("attenuate got %d bytes for %s", len(f.raw), f.grant.Holder)
	}
	f.raw = nil
	v, err := s.VerifyToken(context.Background(), &wotv1.VerifyTokenRequest{Token: chain.Encode()})
	if err != nil {
		t.Fatal(err)
	}
	if string(f.raw) != string(chain.Encode()) || v.GetHolderDeviceId() != alice.String() || len(v.GetBlockIds()) != 1 {
		t.Fatalf("verify got %d bytes, answered %v", len(f.raw), v)
	}
}

// Inspecting describes every block of the chain without the web of trust;
// revoking names the block asked for by index.
func TestInspectAndRevokeNameBlocks(t *testing.T) {
	_, chain := tokens(t)
	blocks := chain.Blocks()
	f := &fakeDomain{}
	s := New(f, f, self)
	resp, err := s.InspectToken(context.Background(), &wotv1.InspectTokenRequest{Token: chain.Encode()})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.GetBlocks()
	if len(got) != 2 || got[0].GetId() != blocks[0].ID.String() || got[1].GetPrev() != blocks[0].ID.String() ||
		got[1].GetHolderDeviceId() != alice.String() || resp.GetHash() != chain.Hash().String() {
		t.Fatalf("inspect %v", resp)
	}
	for i, b := range blocks {
		r, err := s.RevokeToken(context.Background(), &wotv1.RevokeTokenRequest{Token: chain.Encode(), Block: uint32(i)})
		if err != nil {
			t.Fatal(err)
		}
		if f.block != b.ID || r.GetBlockId() != b.ID.String() {
			t.Fatalf("block %d: revoked %s, want %s", i, f.block, b.ID)
		}
	}
}
