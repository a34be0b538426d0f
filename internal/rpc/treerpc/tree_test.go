package treerpc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	treev1 "github.com/aura-p2p/aura/api/proto/aura/tree/v1"
	"github.com/aura-p2p/aura/internal/account"
	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/rpctest"
	"github.com/aura-p2p/aura/internal/tree"
)

// The account is what the service is written against.
var _ Account = (*account.Service)(nil)

// fakeAccount records what reaches it and answers with view, inv and key,
// or with err from every method.
type fakeAccount struct {
	err  error
	view *account.View
	inv  *account.Invitation
	key  *account.KeyInfo

	calls   int
	expires time.Duration
	code    string
	removed []core.DeviceID
}

func (f *fakeAccount) Show(context.Context) (*account.View, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return f.view, nil
}

func (f *fakeAccount) Invite(_ context.Context, expires time.Duration) (*account.Invitation, error) {
	f.calls++
	f.expires = expires
	if f.err != nil {
		return nil, f.err
	}
	return f.inv, nil
}

func (f *fakeAccount) Join(_ context.Context, code string) (*account.View, error) {
	f.calls++
	f.code = code
	if f.err != nil {
		return nil, f.err
	}
	return f.view, nil
}

func (f *fakeAccount) Key(context.Context) (*account.KeyInfo, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return f.key, nil
}

func (f *fakeAccount) UpdatePath(context.Context) (*account.View, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return f.view, nil
}

func (f *fakeAccount) RemoveDevice(_ context.Context, device core.DeviceID) (*account.View, error) {
	f.calls++
	f.removed = append(f.removed, device)
	if f.err != nil {
		return nil, f.err
	}
	return f.view, nil
}

var (
	authority = core.AuthorityID{0xa1}
	root      = core.Hash{0xc0}
	parent    = tree.StateName{Epoch: 1, Commitment: core.Hash{0xc1}}
	devA      = core.DeviceID{0xd1}
	devB      = core.DeviceID{0xd2}
	guardian  = core.DeviceID{0xd3}
	opWon     = tree.OpID{0x01}
	opLost    = tree.OpID{0x02}
	opBad     = tree.OpID{0x03}
	opAgain   = tree.OpID{0x04}
	expiresAt = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

// A two-device account with a guardian, whose last state had two sibling
// ops (one won) and one invalid op.
func sampleView() *account.View {
	return &account.View{
		Authority: authority, Epoch: 2, Root: root, Policy: "all", Required: 2,
		Devices: []account.Device{
			{Leaf: 0, Device: devA, Role: tree.RoleDevice, HPKE: [32]byte{0xe1}},
			{Leaf: 1, Device: devB, Role: tree.RoleDevice, HPKE: [32]byte{0xe2}, Self: true},
			{Leaf: 2, Device: guardian, Role: tree.RoleGuardian, HPKE: [32]byte{0xe3}},
		},
		Ops: []account.OpInfo{
			{ID: opWon, Kind: tree.KindAddLeaf, Author: 0, Parent: parent, Status: tree.StatusApplied},
			{ID: opLost, Kind: tree.KindAddLeaf, Author: 0, Parent: parent, Status: tree.StatusSuperseded, By: opWon, Reproposed: &opAgain},
			{ID: opBad, Kind: tree.KindRemoveLeaf, Author: 1, Parent: parent, Status: tree.StatusRejected, Reason: "leaf 7 is blank \xff"},
		},
	}
}

func newFake(err error) *fakeAccount {
	return &fakeAccount{
		err:  err,
		view: sampleView(),
		inv:  &account.Invitation{ID: [16]byte{0x1d}, Code: "aura-device1-xyz", Expires: expiresAt},
		key:  &account.KeyInfo{Epoch: 2, Root: root, Fingerprint: [16]byte{0xf1, 0xf2}},
	}
}

// Every method: input refused before the account sees it, and the account's
// errors, each with the code the caller gets.
func TestValidationAndCodes(t *testing.T) {
	ctx := context.Background()
	show := func(s *Service) error {
		_, err := s.Show(ctx, &treev1.ShowRequest{})
		return err
	}
	invite := func(d *durationpb.Duration) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.InviteDevice(ctx, &treev1.InviteDeviceRequest{Expires: d})
			return err
		}
	}
	join := func(code string) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.JoinAccount(ctx, &treev1.JoinAccountRequest{Code: code})
			return err
		}
	}
	key := func(s *Service) error {
		_, err := s.Key(ctx, &treev1.KeyRequest{})
		return err
	}
	update := func(s *Service) error {
		_, err := s.UpdatePath(ctx, &treev1.UpdatePathRequest{})
		return err
	}
	remove := func(id string) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.RemoveDevice(ctx, &treev1.RemoveDeviceRequest{DeviceId: id})
			return err
		}
	}
	code := "aura-device1-xyz"
	idA := devA.String()
	tests := []struct {
		name      string
		call      func(s *Service) error
		domainErr error
		code      codes.Code
		reaches   bool
		msg       string
	}{
		{"show: store closed", show, fmt.Errorf("view: %w", core.ErrUnavailable), codes.Unavailable, true, "view"},
		{"show: tree damaged", show, fmt.Errorf("tree op 01: %w", core.ErrDataLoss), codes.DataLoss, true, "tree op 01"},
		{"show: a bug", show, errors.New("nil tree"), codes.Internal, true, "nil tree"},
		{"show: ok", show, nil, codes.OK, true, ""},

		{"invite: not a valid duration", invite(&durationpb.Duration{Seconds: 1, Nanos: -1}), nil, codes.InvalidArgument, false, "expires"},
		{"invite: negative", invite(durationpb.New(-time.Hour)), nil, codes.InvalidArgument, false, "want 1m0s to 168h0m0s"},
		{"invite: zero", invite(durationpb.New(0)), nil, codes.InvalidArgument, false, "expires 0s is out of range"},
		{"invite: just under a minute", invite(durationpb.New(time.Minute - time.Nanosecond)), nil, codes.InvalidArgument, false, "want 1m0s to 168h0m0s"},
		{"invite: a minute", invite(durationpb.New(time.Minute)), nil, codes.OK, true, ""},
		{"invite: seven days", invite(durationpb.New(7 * 24 * time.Hour)), nil, codes.OK, true, ""},
		{"invite: just over seven days", invite(durationpb.New(7*24*time.Hour + time.Second)), nil, codes.InvalidArgument, false, "expires 168h0m1s is out of range"},
		{"invite: default", invite(nil), nil, codes.OK, true, ""},
		{"invite: a guardian cannot invite", invite(nil), fmt.Errorf("this device is a guardian: %w", core.ErrFailedPrecondition), codes.FailedPrecondition, true, "guardian"},
		{"invite: journal closed", invite(nil), fmt.Errorf("commit: %w", core.ErrUnavailable), codes.Unavailable, true, ""},

		{"join: no code", join(""), nil, codes.InvalidArgument, false, "no invitation code given"},
		{"join: blank code", join(" \n\t"), nil, codes.InvalidArgument, false, "no invitation code given"},
		{"join: code too long", join(strings.Repeat("a", maxCodeLen+1)), nil, codes.InvalidArgument, false, "invitation code is 4097 bytes"},
		{"join: longest code", join(strings.Repeat("a", maxCodeLen)), nil, codes.OK, true, ""},
		{"join: malformed code", join("aura1-contact"), ceremony.ErrCodeMalformed, codes.InvalidArgument, true, ""},
		{"join: forged code", join(code), ceremony.ErrCodeForged, codes.InvalidArgument, true, ""},
		{"join: expired code", join(code), fmt.Errorf("%w at noon", ceremony.ErrCodeExpired), codes.FailedPrecondition, true, "at noon"},
		{"join: already in an account with devices", join(code), fmt.Errorf("account has 2 devices: %w", core.ErrFailedPrecondition), codes.FailedPrecondition, true, "2 devices"},
		{"join: own invitation", join(code), account.ErrOwnInvitation, codes.InvalidArgument, true, "own invitation"},
		{"join: already a device of the account", join(code), account.ErrAlreadyMember, codes.AlreadyExists, true, ""},
		{"join: another join running", join(code), account.ErrJoinRunning, codes.FailedPrecondition, true, ""},
		{"join: invitation unknown to the inviter", join(code), account.ErrUnknownInvitation, codes.NotFound, true, "no such invitation"},
		{"join: invitation used", join(code), account.ErrInvitationUsed, codes.FailedPrecondition, true, "already used"},
		{"join: bad proof", join(code), account.ErrBadProof, codes.PermissionDenied, true, ""},
		{"join: ceremony aborted", join(code), fmt.Errorf("enrollment aborted: concurrent op won: %w", core.ErrAborted), codes.Aborted, true, "concurrent op won"},
		{"join: inviter unreachable", join(code), account.ErrUnreachable, codes.Unavailable, true, "not reachable"},
		{"join: caller gave up", join(code), context.Canceled, codes.Canceled, true, ""},
		{"join: ok", join(code), nil, codes.OK, true, ""},

		{"key: ok", key, nil, codes.OK, true, ""},
		{"key: missed the path update", key, fmt.Errorf("epoch 3: %w", account.ErrNoEpochKey), codes.FailedPrecondition, true, "epoch 3"},
		{"key: no genesis", key, account.ErrNoGenesis, codes.FailedPrecondition, true, "genesis"},
		{"key: store closed", key, fmt.Errorf("view: %w", core.ErrUnavailable), codes.Unavailable, true, "view"},
		{"key: a bug", key, errors.New("nil secret"), codes.Internal, true, "nil secret"},

		{"update: ok", update, nil, codes.OK, true, ""},
		{"update: missed the path update", update, fmt.Errorf("epoch 3: %w", account.ErrNoEpochKey), codes.FailedPrecondition, true, "epoch 3"},
		{"update: policy needs several devices", update, account.ErrThresholdUnsupported, codes.FailedPrecondition, true, "several devices"},
		{"update: concurrent op won", update, fmt.Errorf("update path: a concurrent op won: %w", core.ErrAborted), codes.Aborted, true, "concurrent op won"},
		{"update: journal closed", update, fmt.Errorf("commit: %w", core.ErrUnavailable), codes.Unavailable, true, "commit"},
		{"update: caller gave up", update, context.Canceled, codes.Canceled, true, ""},

		{"remove: no device id", remove(""), nil, codes.InvalidArgument, false, "no device id given"},
		{"remove: a prefix", remove(idA[:8]), nil, codes.InvalidArgument, false, `device id "d1000000": want 64 hex digits, got 8`},
		{"remove: one digit too many", remove(idA + "0"), nil, codes.InvalidArgument, false, "want 64 hex digits, got 65"},
		{"remove: not hex", remove(strings.Repeat("z", 64)), nil, codes.InvalidArgument, false, "not hex"},
		{"remove: a peer id", remove("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"), nil, codes.InvalidArgument, false, "want 64 hex digits, got 52"},
		{"remove: a huge id", remove(strings.Repeat("d1", 50_000)), nil, codes.InvalidArgument, false, "…(100000 bytes): want 64 hex digits, got 100000"},
		{"remove: upper case", remove(strings.ToUpper(idA)), nil, codes.OK, true, ""},
		{"remove: ok", remove(idA), nil, codes.OK, true, ""},
		{"remove: not in the account", remove(idA), fmt.Errorf("device %s: %w", idA, account.ErrNotInAccount), codes.NotFound, true, idA},
		{"remove: this device", remove(idA), account.ErrRemoveSelf, codes.FailedPrecondition, true, "remove it from another device"},
		{"remove: the last device", remove(idA), fmt.Errorf("leaf 0: %w", tree.ErrLastDevice), codes.FailedPrecondition, true, "last device"},
		{"remove: missed the path update", remove(idA), fmt.Errorf("epoch 3: %w", account.ErrNoEpochKey), codes.FailedPrecondition, true, "epoch 3"},
		{"remove: no longer in the tree", remove(idA), fmt.Errorf("this device is no longer in its account's tree: %w", core.ErrFailedPrecondition), codes.FailedPrecondition, true, "no longer"},
		{"remove: policy needs several devices", remove(idA), account.ErrThresholdUnsupported, codes.FailedPrecondition, true, "several devices"},
		{"remove: journal closed", remove(idA), fmt.Errorf("commit: %w", core.ErrUnavailable), codes.Unavailable, true, "commit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(tc.domainErr)
			msg := rpctest.CheckOutcome(t, tc.call(New(f)), tc.code, f.calls, tc.reaches, tc.domainErr)
			if !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q lacks %q", msg, tc.msg)
			}
		})
	}
}

// What reaches the account is what the request said: an unset expiry is
// the account's default (zero), and a code passes untouched (the
// ceremony's parser trims it and names what is wrong with it).
func TestRequestsReachTheAccount(t *testing.T) {
	ctx := context.Background()
	f := newFake(nil)
	s := New(f)

	if _, err := s.InviteDevice(ctx, &treev1.InviteDeviceRequest{}); err != nil {
		t.Fatal(err)
	}
	if f.expires != 0 {
		t.Fatalf("invite got %v, want the default (0)", f.expires)
	}
	if _, err := s.InviteDevice(ctx, &treev1.InviteDeviceRequest{Expires: durationpb.New(90 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if f.expires != 90*time.Minute {
		t.Fatalf("invite got %v, want 1h30m", f.expires)
	}
	if _, err := s.JoinAccount(ctx, &treev1.JoinAccountRequest{Code: " aura-device1-xyz\n"}); err != nil {
		t.Fatal(err)
	}
	if f.code != " aura-device1-xyz\n" {
		t.Fatalf("join got %q", f.code)
	}
	for _, id := range []string{devA.String(), strings.ToUpper(devA.String())} {
		if _, err := s.RemoveDevice(ctx, &treev1.RemoveDeviceRequest{DeviceId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.removed) != 2 || f.removed[0] != devA || f.removed[1] != devA {
		t.Fatalf("remove got %v, want %v twice", f.removed, devA)
	}
}

// The view, field by field: ids and keys in hex, enums by their names, the
// op that won named only on the superseded one, and a reason that is not
// UTF-8 made so rather than failing the whole response.
func TestViewMapping(t *testing.T) {
	h := func(b []byte) string { return hex.EncodeToString(b) }
	hpke := func(b byte) string { k := [32]byte{b}; return h(k[:]) }
	want := &treev1.TreeView{
		AuthorityId: h(authority[:]), Epoch: 2, RootCommitment: h(root[:]), Policy: "all", Required: 2,
		Devices: []*treev1.Device{
			{Leaf: 0, DeviceId: h(devA[:]), Role: "device", HpkeKey: hpke(0xe1)},
			{Leaf: 1, DeviceId: h(devB[:]), Role: "device", HpkeKey: hpke(0xe2), Self: true},
			{Leaf: 2, DeviceId: h(guardian[:]), Role: "guardian", HpkeKey: hpke(0xe3)},
		},
		Ops: []*treev1.TreeOp{
			{OpId: h(opWon[:]), Kind: "AddLeaf", AuthorLeaf: 0, ParentEpoch: 1, ParentCommitment: h(parent.Commitment[:]), Status: "applied"},
			{OpId: h(opLost[:]), Kind: "AddLeaf", AuthorLeaf: 0, ParentEpoch: 1, ParentCommitment: h(parent.Commitment[:]), Status: "superseded", SupersededBy: h(opWon[:]), ReproposedAs: h(opAgain[:])},
			{OpId: h(opBad[:]), Kind: "RemoveLeaf", AuthorLeaf: 1, ParentEpoch: 1, ParentCommitment: h(parent.Commitment[:]), Status: "rejected", Reason: "leaf 7 is blank ?"},
		},
	}
	ctx := context.Background()
	s := New(newFake(nil))

	shown, err := s.Show(ctx, &treev1.ShowRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(shown.GetView(), want) {
		t.Fatalf("show:\n got %v\nwant %v", shown.GetView(), want)
	}
	// The response must marshal: an invalid UTF-8 string would not.
	if _, err := proto.Marshal(shown); err != nil {
		t.Fatal(err)
	}
	joined, err := s.JoinAccount(ctx, &treev1.JoinAccountRequest{Code: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(joined.GetView(), want) {
		t.Fatalf("join:\n got %v\nwant %v", joined.GetView(), want)
	}
	updated, err := s.UpdatePath(ctx, &treev1.UpdatePathRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(updated.GetView(), want) {
		t.Fatalf("update:\n got %v\nwant %v", updated.GetView(), want)
	}
	removed, err := s.RemoveDevice(ctx, &treev1.RemoveDeviceRequest{DeviceId: devA.String()})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(removed.GetView(), want) {
		t.Fatalf("remove:\n got %v\nwant %v", removed.GetView(), want)
	}

	key, err := s.Key(ctx, &treev1.KeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantKey := &treev1.KeyResponse{Epoch: 2, Root: h(root[:]), Fingerprint: "f1f2" + strings.Repeat("0", 28)}
	if !proto.Equal(key, wantKey) {
		t.Fatalf("key:\n got %v\nwant %v", key, wantKey)
	}

	inv, err := s.InviteDevice(ctx, &treev1.InviteDeviceRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantInv := &treev1.InviteDeviceResponse{
		InvitationId: "1d" + strings.Repeat("0", 30), Code: "aura-device1-xyz", ExpiresAt: timestamppb.New(expiresAt),
	}
	if !proto.Equal(inv, wantInv) {
		t.Fatalf("invite:\n got %v\nwant %v", inv, wantInv)
	}
}

// An inviter that could not be reached is marked as a peer failure, so that
// auractl tells it from aurad being unavailable; the account's other
// failures are not.
func TestUnreachableInviterCarriesTheReason(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		reason string
	}{
		{"unreachable", fmt.Errorf("enroll: %w", account.ErrUnreachable), rpc.ReasonPeerUnreachable},
		{"journal unavailable", fmt.Errorf("commit: %w", core.ErrUnavailable), ""},
		{"expired", ceremony.ErrCodeExpired, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(newFake(tc.err)).JoinAccount(context.Background(), &treev1.JoinAccountRequest{Code: "c"})
			st, _ := rpc.ToStatus(err)
			if got := rpc.Reason(st.Err()); got != tc.reason {
				t.Fatalf("reason %q, want %q (%v)", got, tc.reason, st)
			}
		})
	}
}

// Every registered method has a permission, and none names a method that
// is not there: reading the tree or the key's name is Read; an UpdatePath
// changes keys, not members, so it is Write; inviting a device, joining an
// account and removing a device hand over, move or take away membership,
// so they are Admin.
func TestPermissions(t *testing.T) {
	srv := grpc.NewServer()
	New(newFake(nil)).Register(srv)
	p := Permissions()
	if err := rpc.CheckPermissions(srv, p); err != nil {
		t.Fatal(err)
	}
	want := rpc.Permissions{
		treev1.TreeService_Show_FullMethodName:         rpc.Read,
		treev1.TreeService_InviteDevice_FullMethodName: rpc.Admin,
		treev1.TreeService_JoinAccount_FullMethodName:  rpc.Admin,
		treev1.TreeService_Key_FullMethodName:          rpc.Read,
		treev1.TreeService_UpdatePath_FullMethodName:   rpc.Write,
		treev1.TreeService_RemoveDevice_FullMethodName: rpc.Admin,
	}
	for m, level := range want {
		if p[m] != level {
			t.Errorf("%s needs %v, want %v", m, p[m], level)
		}
	}
}
