package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	treev1 "github.com/aura-p2p/aura/api/proto/aura/tree/v1"
	"github.com/aura-p2p/aura/internal/core"
)

// fakeTree answers Show and JoinAccount with view, InviteDevice with inv,
// Key with key, and UpdatePath and RemoveDevice with after, or every call
// with err. It records the requests, and how long JoinAccount's caller gave
// it.
type fakeTree struct {
	treev1.UnimplementedTreeServiceServer
	mu       sync.Mutex
	view     *treev1.TreeView
	inv      *treev1.InviteDeviceResponse
	key      *treev1.KeyResponse
	after    *treev1.TreeView
	err      error
	shows    int
	invites  []*treev1.InviteDeviceRequest
	joins    []*treev1.JoinAccountRequest
	joinLeft time.Duration // until the deadline of the last JoinAccount; 0 without one
	keys     int
	updates  int
	removes  []string // device ids
}

func (f *fakeTree) Show(context.Context, *treev1.ShowRequest) (*treev1.ShowResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shows++
	if f.err != nil {
		return nil, f.err
	}
	return &treev1.ShowResponse{View: f.view}, nil
}

func (f *fakeTree) InviteDevice(_ context.Context, req *treev1.InviteDeviceRequest) (*treev1.InviteDeviceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invites = append(f.invites, req)
	if f.err != nil {
		return nil, f.err
	}
	return f.inv, nil
}

func (f *fakeTree) JoinAccount(ctx context.Context, req *treev1.JoinAccountRequest) (*treev1.JoinAccountResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joins = append(f.joins, req)
	f.joinLeft = 0
	if dl, ok := ctx.Deadline(); ok {
		f.joinLeft = time.Until(dl)
	}
	if f.err != nil {
		return nil, f.err
	}
	return &treev1.JoinAccountResponse{View: f.view}, nil
}

func (f *fakeTree) Key(context.Context, *treev1.KeyRequest) (*treev1.KeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys++
	if f.err != nil {
		return nil, f.err
	}
	return f.key, nil
}

func (f *fakeTree) UpdatePath(context.Context, *treev1.UpdatePathRequest) (*treev1.UpdatePathResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates++
	if f.err != nil {
		return nil, f.err
	}
	return &treev1.UpdatePathResponse{View: f.after}, nil
}

func (f *fakeTree) RemoveDevice(_ context.Context, req *treev1.RemoveDeviceRequest) (*treev1.RemoveDeviceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removes = append(f.removes, req.GetDeviceId())
	if f.err != nil {
		return nil, f.err
	}
	return &treev1.RemoveDeviceResponse{View: f.after}, nil
}

// calls returns how many Show calls and which removals reached the fake.
func (f *fakeTree) calls() (shows int, removes []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shows, slices.Clone(f.removes)
}

// fakeStatus answers GetStatus as a device of authority, after answering
// its first unavailable calls Unavailable, as aurad's lifecycle gate does
// while it starts. onCall, when set, runs once, at the first call.
type fakeStatus struct {
	nodev1.UnimplementedNodeServiceServer
	mu          sync.Mutex
	authority   string
	unavailable int
	calls       int
	onCall      func()
}

func (f *fakeStatus) GetStatus(context.Context, *nodev1.GetStatusRequest) (*nodev1.GetStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.onCall != nil {
		f.onCall()
		f.onCall = nil
	}
	if f.calls <= f.unavailable {
		return nil, status.Error(codes.Unavailable, "node is starting")
	}
	return &nodev1.GetStatusResponse{DeviceId: treeDevB, AuthorityId: f.authority}, nil
}

func (f *fakeStatus) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// treeServer is a daemon serving tr and st; it is not serving yet.
func treeServer(t *testing.T, tr *fakeTree, st *fakeStatus) *grpc.Server {
	t.Helper()
	srv := grpc.NewServer()
	treev1.RegisterTreeServiceServer(srv, tr)
	nodev1.RegisterNodeServiceServer(srv, st)
	t.Cleanup(srv.Stop)
	return srv
}

func serveAt(srv *grpc.Server, sock string) error {
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	go func() { _ = srv.Serve(lis) }()
	return nil
}

// startTree serves tr and st on a new socket.
func startTree(t *testing.T, tr *fakeTree, st *fakeStatus) (string, *grpc.Server) {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "aurad.sock")
	srv := treeServer(t, tr, st)
	if err := serveAt(srv, sock); err != nil {
		t.Fatal(err)
	}
	return sock, srv
}

var (
	treeJoined = strings.Repeat("4a", 32)
	treeOld    = strings.Repeat("0b", 32)
	treeDevA   = strings.Repeat("d1", 32)
	treeDevB   = strings.Repeat("d2", 32)
	treeGuard  = strings.Repeat("d3", 32)
	treeOpWon  = strings.Repeat("01", 32)
	treeParent = strings.Repeat("c1", 32)
)

// A two-device account with a guardian; this is its second device. At its
// last state two sibling ops raced (one won), and one op was invalid.
func sampleTreeView() *treev1.TreeView {
	return &treev1.TreeView{
		AuthorityId: treeJoined, Epoch: 2, RootCommitment: strings.Repeat("c0", 32), Policy: "all", Required: 2,
		Devices: []*treev1.Device{
			{Leaf: 0, DeviceId: treeDevA, Role: "device", HpkeKey: strings.Repeat("e1", 32)},
			{Leaf: 1, DeviceId: treeDevB, Role: "device", HpkeKey: strings.Repeat("e2", 32), Self: true},
			{Leaf: 2, DeviceId: treeGuard, Role: "guardian", HpkeKey: strings.Repeat("e3", 32)},
		},
		Ops: []*treev1.TreeOp{
			{OpId: treeOpWon, Kind: "AddLeaf", AuthorLeaf: 0, ParentEpoch: 1, ParentCommitment: treeParent, Status: "applied"},
			{OpId: strings.Repeat("02", 32), Kind: "AddLeaf", AuthorLeaf: 0, ParentEpoch: 1, ParentCommitment: treeParent, Status: "superseded", SupersededBy: treeOpWon},
			{OpId: strings.Repeat("03", 32), Kind: "RemoveLeaf", AuthorLeaf: 1, ParentEpoch: 1, ParentCommitment: treeParent, Status: "rejected", Reason: "leaf 7\tis\nblank"},
			{OpId: strings.Repeat("04", 32), Kind: "UpdatePath", AuthorLeaf: 1, ParentEpoch: 1, ParentCommitment: treeParent, Status: "superseded", SupersededBy: treeOpWon, ReproposedAs: strings.Repeat("05", 32)},
			{OpId: strings.Repeat("06", 32), Kind: "AddLeaf", AuthorLeaf: 1, ParentEpoch: 1, ParentCommitment: treeParent, Status: "superseded", SupersededBy: treeOpWon, Reason: "not made again: the device is in the tree already"},
		},
	}
}

var wantDeviceCells = [][]string{
	{"LEAF", "DEVICE", "ROLE", "THIS DEVICE"},
	{"0", "d1d1d1d1d1d1d1d1", "device", "-"},
	{"1", "d2d2d2d2d2d2d2d2", "device", "yes"},
	{"2", "d3d3d3d3d3d3d3d3", "guardian", "-"},
}

func protoJSON(t *testing.T, m proto.Message) string {
	t.Helper()
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true, Indent: "  "}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func TestDeviceInvite(t *testing.T) {
	inv := &treev1.InviteDeviceResponse{InvitationId: strings.Repeat("1d", 16), Code: "aura-device1-abc", ExpiresAt: timestamppb.New(time.Unix(1_700_003_600, 0))}
	f := &fakeTree{inv: inv}
	sock, _ := startTree(t, f, &fakeStatus{})

	r := runCtl(t, nil, nil, "--socket", sock, "device", "invite")
	mustOK(t, r)
	if r.out != "aura-device1-abc\n" {
		t.Errorf("table output %q, want the code alone", r.out)
	}
	r = runCtl(t, nil, nil, "--socket", sock, "-o", "json", "device", "invite", "--expires", "2h")
	mustOK(t, r)
	if r.out != protoJSON(t, inv) {
		t.Errorf("json output\n%s\nwant\n%s", r.out, protoJSON(t, inv))
	}
	for _, bad := range []string{"0", "-1h"} {
		if r := runCtl(t, nil, nil, "--socket", sock, "device", "invite", "--expires", bad); r.code != ExitUsage ||
			r.err != "Error: auractl device invite: --expires must be positive\n" {
			t.Errorf("--expires %s: exit %d, stderr %q", bad, r.code, r.err)
		}
	}
	f.mu.Lock()
	want := []*treev1.InviteDeviceRequest{{}, {Expires: durationpb.New(2 * time.Hour)}}
	if len(f.invites) != len(want) || !proto.Equal(f.invites[0], want[0]) || !proto.Equal(f.invites[1], want[1]) {
		t.Errorf("requests %v, want %v: the default left to aurad, the flag as given, refusals never sent", f.invites, want)
	}
	f.err = status.Error(codes.InvalidArgument, "expires 720h0m0s is out of range: want 1m0s to 168h0m0s")
	f.mu.Unlock()
	r = runCtl(t, nil, nil, "--socket", sock, "device", "invite", "--expires", "720h")
	if r.code != ExitInvalidArgument || r.out != "" ||
		r.err != "Error: invalid argument: expires 720h0m0s is out of range: want 1m0s to 168h0m0s\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
}

func TestDeviceList(t *testing.T) {
	f := &fakeTree{view: sampleTreeView()}
	sock, _ := startTree(t, f, &fakeStatus{})

	r := runCtl(t, nil, nil, "--socket", sock, "device", "list")
	mustOK(t, r)
	if got := cells(r.out); fmt.Sprint(got) != fmt.Sprint(wantDeviceCells) {
		t.Errorf("table\n%s\ncells %q\nwant  %q", r.out, got, wantDeviceCells)
	}
	r = runCtl(t, nil, nil, "--socket", sock, "-o", "json", "device", "list")
	mustOK(t, r)
	if want := protoJSON(t, &treev1.ShowResponse{View: f.view}); r.out != want {
		t.Errorf("json output\n%s\nwant\n%s", r.out, want)
	}
}

// The state as key: value lines, then the leaves, then the ops, each block
// aligned on its own; a reason's tabs and line breaks do not break its row.
func TestTreeShow(t *testing.T) {
	f := &fakeTree{view: sampleTreeView()}
	sock, _ := startTree(t, f, &fakeStatus{})

	r := runCtl(t, nil, nil, "--socket", sock, "tree", "show")
	mustOK(t, r)
	blocks := strings.Split(r.out, "\n\n")
	if len(blocks) != 3 {
		t.Fatalf("%d blocks, want state, leaves and ops:\n%s", len(blocks), r.out)
	}
	wantState := "account:           " + treeJoined + "\n" +
		"epoch:             2\n" +
		"root commitment:   " + strings.Repeat("c0", 32) + "\n" +
		"policy:            all\n" +
		"required signers:  2"
	if blocks[0] != wantState {
		t.Errorf("state\n%s\nwant\n%s", blocks[0], wantState)
	}
	if got := cells(blocks[1]); fmt.Sprint(got) != fmt.Sprint(wantDeviceCells) {
		t.Errorf("leaves %q, want %q", got, wantDeviceCells)
	}
	wantOps := [][]string{
		{"OP", "KIND", "AUTHOR", "PARENT", "STATUS", "DETAIL"},
		{"0101010101010101", "AddLeaf", "0", "1/c1c1c1c1c1c1c1c1", "applied", "-"},
		{"0202020202020202", "AddLeaf", "0", "1/c1c1c1c1c1c1c1c1", "superseded", "by 0101010101010101"},
		{"0303030303030303", "RemoveLeaf", "1", "1/c1c1c1c1c1c1c1c1", "rejected", "leaf 7 is blank"},
		{"0404040404040404", "UpdatePath", "1", "1/c1c1c1c1c1c1c1c1", "superseded", "by 0101010101010101, made again as 0505050505050505"},
		{"0606060606060606", "AddLeaf", "1", "1/c1c1c1c1c1c1c1c1", "superseded", "by 0101010101010101, not made again: the device is in the tree already"},
	}
	if got := cells(blocks[2]); fmt.Sprint(got) != fmt.Sprint(wantOps) {
		t.Errorf("ops\n%s\ncells %q\nwant  %q", blocks[2], got, wantOps)
	}

	r = runCtl(t, nil, nil, "--socket", sock, "-o", "json", "tree", "show")
	mustOK(t, r)
	if want := protoJSON(t, &treev1.ShowResponse{View: f.view}); r.out != want {
		t.Errorf("json output\n%s\nwant\n%s", r.out, want)
	}
}

// The join commits, then aurad restarts: the old daemon still answers as
// the old account, then its socket goes away, then the new daemon answers
// Unavailable while it starts, and only then as the joined account. auractl
// waits all of that out, and prints the joined account only then.
func TestDeviceJoinWaitsForTheRestart(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "aurad.sock")
	tr := &fakeTree{view: sampleTreeView()}
	after := &fakeStatus{authority: treeJoined, unavailable: 2}
	restarted := treeServer(t, tr, after)
	before := &fakeStatus{authority: treeOld}
	old := treeServer(t, tr, before)
	before.onCall = func() {
		go func() {
			// After this call's answer: the old daemon goes away, its
			// socket with it, and the new one listens on the same path.
			old.GracefulStop()
			if err := serveAt(restarted, sock); err != nil {
				t.Error(err)
			}
		}()
	}
	if err := serveAt(old, sock); err != nil {
		t.Fatal(err)
	}

	r := runCtl(t, nil, nil, "--socket", sock, "device", "join", "aura-device1-abc")
	mustOK(t, r)
	account, devices, ok := strings.Cut(r.out, "\n\n")
	if !ok || account != "account:  "+treeJoined {
		t.Errorf("output\n%s\nwant the joined account first", r.out)
	}
	if got := cells(devices); fmt.Sprint(got) != fmt.Sprint(wantDeviceCells) {
		t.Errorf("devices %q, want %q", got, wantDeviceCells)
	}
	if before.count() < 1 || after.count() != after.unavailable+1 {
		t.Errorf("status calls: %d before the restart, %d after; want at least 1 and %d", before.count(), after.count(), after.unavailable+1)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.joins) != 1 || tr.joins[0].GetCode() != "aura-device1-abc" {
		t.Errorf("joins %v", tr.joins)
	}
}

// -o json prints the response once aurad is back, exactly.
func TestDeviceJoinJSON(t *testing.T) {
	tr := &fakeTree{view: sampleTreeView()}
	sock, _ := startTree(t, tr, &fakeStatus{authority: treeJoined})
	r := runCtl(t, nil, nil, "--socket", sock, "-o", "json", "device", "join", "aura-device1-abc")
	mustOK(t, r)
	if want := protoJSON(t, &treev1.JoinAccountResponse{View: tr.view}); r.out != want {
		t.Errorf("json output\n%s\nwant\n%s", r.out, want)
	}
}

// A join that committed but after which aurad does not come back as the
// joined account fails with one line that names the account and what aurad
// last did; nothing is printed on stdout.
func TestDeviceJoinWithoutRestart(t *testing.T) {
	dir := shortTempDir(t)
	tests := []struct {
		name string
		st   func(srv func() *grpc.Server) *fakeStatus
		code int
		last string
	}{
		{"still the old account", func(func() *grpc.Server) *fakeStatus { return &fakeStatus{authority: treeOld} },
			ExitDeadlineExceeded, "deadline exceeded: joined account " + treeJoined + ", but aurad did not come back as its device within 1s (it still answers as account " + treeOld + ")"},
		{"never done starting", func(func() *grpc.Server) *fakeStatus { return &fakeStatus{authority: treeJoined, unavailable: 1 << 30} },
			ExitUnavailable, "unavailable: joined account " + treeJoined + ", but aurad did not come back as its device within 1s (last: unavailable: node is starting)"},
		{"gone", func(srv func() *grpc.Server) *fakeStatus {
			st := &fakeStatus{authority: treeOld}
			st.onCall = func() { go srv().GracefulStop() }
			return st
		}, ExitUnavailable, "unavailable: joined account " + treeJoined + ", but aurad did not come back as its device within 1s (last: aurad is not running at " + filepath.Join(dir, "gone.sock") + ")"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var srv *grpc.Server
			st := tc.st(func() *grpc.Server { return srv })
			srv = treeServer(t, &fakeTree{view: sampleTreeView()}, st)
			sock := filepath.Join(dir, strings.Fields(tc.name)[0]+".sock")
			if err := serveAt(srv, sock); err != nil {
				t.Fatal(err)
			}
			r := runCtl(t, nil, nil, "--socket", sock, "device", "join", "--wait", "1s", "aura-device1-abc")
			if r.code != tc.code || r.err != "Error: "+tc.last+"\n" || r.out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stderr %q", r.code, r.out, r.err, tc.code, "Error: "+tc.last)
			}
		})
	}
}

// A join that fails says so at once, with its own code; an unreachable
// inviter is the network's failure (13), not aurad's.
func TestDeviceJoinFailures(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		line string
	}{
		{"inviter unreachable", peerFailureStatus(fmt.Errorf("the inviting device is not reachable at any address in the code: %w", core.ErrUnavailable)),
			ExitPeerUnreachable, "Error: unavailable: the inviting device is not reachable at any address in the code"},
		{"malformed code", status.Error(codes.InvalidArgument, `want a code starting "aura-device1-"`),
			ExitInvalidArgument, `Error: invalid argument: want a code starting "aura-device1-"`},
		{"already in an account", status.Error(codes.FailedPrecondition, "this device's account has 2 devices"),
			ExitFailedPrecondition, "Error: failed precondition: this device's account has 2 devices"},
		{"aurad stopping", status.Error(codes.Unavailable, "aurad is shutting down"),
			ExitUnavailable, "Error: unavailable: aurad is shutting down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStatus{authority: treeJoined}
			sock, _ := startTree(t, &fakeTree{err: tc.err}, st)
			r := runCtl(t, nil, nil, "--socket", sock, "device", "join", "aura-device1-abc")
			if r.code != tc.code || r.err != tc.line+"\n" || r.out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stderr %q", r.code, r.out, r.err, tc.code, tc.line)
			}
			if st.count() != 0 {
				t.Errorf("waited for a restart after a failed join (%d status calls)", st.count())
			}
		})
	}
}

// The ceremony gets more than the default --timeout, which is sized for
// local calls, unless --timeout is given; the command line is checked
// before anything is sent.
func TestDeviceJoinArguments(t *testing.T) {
	tr := &fakeTree{view: sampleTreeView()}
	sock, _ := startTree(t, tr, &fakeStatus{authority: treeJoined})
	left := func() time.Duration {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.joinLeft
	}

	mustOK(t, runCtl(t, nil, nil, "--socket", sock, "device", "join", "c"))
	if l := left(); l <= time.Minute || l > joinTimeout {
		t.Errorf("the join had %s left, want about %s", l, joinTimeout)
	}
	mustOK(t, runCtl(t, nil, nil, "--socket", sock, "--timeout", "3s", "device", "join", "c"))
	if l := left(); l <= 0 || l > 3*time.Second {
		t.Errorf("the join had %s left, want at most the 3s asked for", l)
	}

	for _, args := range [][]string{{"device", "join"}, {"device", "join", "a", "b"}, {"device", "join", "--wait", "0", "c"}, {"device", "join", "--wait", "-1s", "c"}} {
		if r := runCtl(t, nil, nil, append([]string{"--socket", sock}, args...)...); r.code != ExitUsage {
			t.Errorf("%q: exit %d, want %d", args, r.code, ExitUsage)
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.joins) != 2 {
		t.Errorf("%d joins sent, want the 2 valid ones", len(tr.joins))
	}
}

// The account after device A left and the keys rotated: epoch 4, the other
// device and the guardian.
func treeAfterRemoval() *treev1.TreeView {
	v := sampleTreeView()
	v.Epoch, v.RootCommitment = 4, strings.Repeat("c4", 32)
	v.Devices = v.Devices[1:]
	return v
}

// A whole id goes to aurad as given, without a look at the list; a prefix,
// in either case, is resolved against the list first. Either way the
// remaining devices are printed as device list prints them.
func TestDeviceRemove(t *testing.T) {
	f := &fakeTree{view: sampleTreeView(), after: treeAfterRemoval()}
	sock, _ := startTree(t, f, &fakeStatus{})
	wantCells := [][]string{wantDeviceCells[0], wantDeviceCells[2], wantDeviceCells[3]}

	r := runCtl(t, nil, nil, "--socket", sock, "device", "remove", treeDevA)
	mustOK(t, r)
	if got := cells(r.out); fmt.Sprint(got) != fmt.Sprint(wantCells) {
		t.Errorf("table\n%s\ncells %q\nwant  %q", r.out, got, wantCells)
	}
	if shows, removes := f.calls(); shows != 0 || fmt.Sprint(removes) != fmt.Sprint([]string{treeDevA}) {
		t.Errorf("%d shows, removals %q; want none and %s", shows, removes, treeDevA)
	}

	for i, arg := range []string{"d1d1d1d1", "D1D1D1D1D1D1", " d1d1d1d1d1 ", strings.ToUpper(treeDevA)} {
		r := runCtl(t, nil, nil, "--socket", sock, "device", "remove", arg)
		mustOK(t, r)
		if got := cells(r.out); fmt.Sprint(got) != fmt.Sprint(wantCells) {
			t.Errorf("%q: cells %q, want %q", arg, got, wantCells)
		}
		if _, removes := f.calls(); removes[len(removes)-1] != treeDevA || len(removes) != i+2 {
			t.Errorf("%q: removals %q, want %s last", arg, removes, treeDevA)
		}
	}
	if shows, _ := f.calls(); shows != 3 {
		t.Errorf("%d shows, want one for each of the 3 prefixes", shows)
	}

	r = runCtl(t, nil, nil, "--socket", sock, "-o", "json", "device", "remove", "d1d1d1d1")
	mustOK(t, r)
	if want := protoJSON(t, &treev1.RemoveDeviceResponse{View: f.after}); r.out != want {
		t.Errorf("json output\n%s\nwant\n%s", r.out, want)
	}
}

// A prefix that names no device or several fails with one line and sends
// no removal; so does a list that aurad cannot show.
func TestDeviceRemovePrefixes(t *testing.T) {
	twin1, twin2 := "d1d1d1d1"+strings.Repeat("aa", 28), "d1d1d1d1"+strings.Repeat("bb", 28)
	view := sampleTreeView()
	view.Devices[0].DeviceId, view.Devices[1].DeviceId = twin1, twin2
	tests := []struct {
		name, arg string
		err       error
		code      int
		line      string
	}{
		{"ambiguous", "d1d1d1d1", nil, ExitInvalidArgument,
			"Error: invalid argument: device id prefix d1d1d1d1 is ambiguous: " + twin1 + ", " + twin2 + "; give more digits"},
		{"unknown", "abcdef01", nil, ExitNotFound, "Error: not found: no device of this account has an id starting abcdef01"},
		{"a prefix of no id, longer than the twins share", "d1d1d1d1cc", nil, ExitNotFound, "Error: not found: no device of this account has an id starting d1d1d1d1cc"},
		{"list refused", "d1d1d1d1", status.Error(codes.PermissionDenied, "/aura.tree.v1.TreeService/Show needs read"), ExitPermissionDenied,
			"Error: permission denied: /aura.tree.v1.TreeService/Show needs read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTree{view: view, after: treeAfterRemoval(), err: tc.err}
			sock, _ := startTree(t, f, &fakeStatus{})
			r := runCtl(t, nil, nil, "--socket", sock, "device", "remove", tc.arg)
			if r.code != tc.code || r.err != tc.line+"\n" || r.out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stderr %q", r.code, r.out, r.err, tc.code, tc.line)
			}
			if shows, removes := f.calls(); shows != 1 || len(removes) != 0 {
				t.Errorf("%d shows, removals %q; want 1 and none", shows, removes)
			}
		})
	}
	// With more digits, one of the twins.
	f := &fakeTree{view: view, after: treeAfterRemoval()}
	sock, _ := startTree(t, f, &fakeStatus{})
	mustOK(t, runCtl(t, nil, nil, "--socket", sock, "device", "remove", "d1d1d1d1b"))
	if _, removes := f.calls(); fmt.Sprint(removes) != fmt.Sprint([]string{twin2}) {
		t.Errorf("removals %q, want %s", removes, twin2)
	}
}

// What aurad refuses comes back as one line with its code's exit status.
func TestDeviceRemoveRefused(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		line string
	}{
		{"not in the account", status.Error(codes.NotFound, "device "+treeGuard+" is not in the account"), ExitNotFound,
			"Error: not found: device " + treeGuard + " is not in the account"},
		{"this device", status.Error(codes.FailedPrecondition, "this device cannot remove itself; remove it from another device"), ExitFailedPrecondition,
			"Error: failed precondition: this device cannot remove itself; remove it from another device"},
		{"the last device", status.Error(codes.FailedPrecondition, "leaf 0: removal of the last device"), ExitFailedPrecondition,
			"Error: failed precondition: leaf 0: removal of the last device"},
		{"a write token", status.Error(codes.PermissionDenied, "/aura.tree.v1.TreeService/RemoveDevice needs admin; this token (ops) is write"), ExitPermissionDenied,
			"Error: permission denied: /aura.tree.v1.TreeService/RemoveDevice needs admin; this token (ops) is write"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTree{err: tc.err}
			sock, _ := startTree(t, f, &fakeStatus{})
			r := runCtl(t, nil, nil, "--socket", sock, "device", "remove", treeDevA)
			if r.code != tc.code || r.err != tc.line+"\n" || r.out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stderr %q", r.code, r.out, r.err, tc.code, tc.line)
			}
		})
	}
}

// What cannot be a device id or a prefix of one is refused before anything
// is sent.
func TestDeviceRemoveArguments(t *testing.T) {
	f := &fakeTree{view: sampleTreeView(), after: treeAfterRemoval()}
	sock, _ := startTree(t, f, &fakeStatus{})
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "auractl device remove: accepts 1 arg(s), received 0"},
		{[]string{treeDevA, treeDevB}, "auractl device remove: accepts 1 arg(s), received 2"},
		{[]string{"d1d1d1d"}, `auractl device remove: DEVICE "d1d1d1d": want a device id (64 hex digits) or a prefix of at least 8 of its digits`},
		{[]string{""}, `DEVICE "": want a device id`},
		{[]string{treeDevA + "d"}, `DEVICE "` + treeDevA + `d": want a device id`},
		{[]string{"d1d1d1d1-"}, `DEVICE "d1d1d1d1-": want a device id`},
		{[]string{"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"}, "want a device id"},
	}
	for _, tc := range tests {
		r := runCtl(t, nil, nil, append([]string{"--socket", sock, "device", "remove"}, tc.args...)...)
		if r.code != ExitUsage || !strings.Contains(r.err, tc.want) || strings.Count(r.err, "\n") != 1 || r.out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, r.code, r.out, r.err, ExitUsage, tc.want)
		}
	}
	if shows, removes := f.calls(); shows != 0 || len(removes) != 0 {
		t.Errorf("%d shows, removals %q; want nothing sent", shows, removes)
	}
}
