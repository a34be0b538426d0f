package syncrpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	syncv1 "github.com/aura-p2p/aura/api/proto/aura/sync/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/rpctest"
	auraSync "github.com/aura-p2p/aura/internal/sync"
)

// The engine is what the service is written against.
var _ Engine = (*auraSync.Syncer)(nil)

// Two peers whose ids share their first 8 hex digits (abcdef12), so that
// prefix is ambiguous and one digit more is not.
var (
	peerA = core.DeviceID{0xab, 0xcd, 0xef, 0x12, 0x01}
	peerB = core.DeviceID{0xab, 0xcd, 0xef, 0x12, 0x02}
	ctxX  = core.ContextID{0x11}
	nsX   = core.ContextNamespace(ctxX)
	nsY   = core.AuthorityNamespace(core.AuthorityID{0x22})
)

func listed() []auraSync.PeerStatus {
	return []auraSync.PeerStatus{
		{Peer: peerA, Namespace: nsX, Context: ctxX, Sessions: 1},
		{Peer: peerA, Namespace: nsY, Sessions: 2},
		{Peer: peerB, Namespace: nsX, Context: ctxX, Sessions: 3},
	}
}

// fakeEngine lists status, reports events through progress in order, and
// returns finals with err. It stops early, as the engine does, when its
// context ends.
type fakeEngine struct {
	status []auraSync.PeerStatus
	events []auraSync.Progress
	finals []auraSync.Progress
	err    error

	statusCalls, syncCalls int
	peer                   core.DeviceID
	ns                     core.Namespace
	stoppedBy              error
	overviewErr            error
}

func (f *fakeEngine) Status() []auraSync.PeerStatus {
	f.statusCalls++
	return f.status
}

func (f *fakeEngine) Overview(context.Context) ([]auraSync.PeerStatus, error) {
	f.statusCalls++
	return f.status, f.overviewErr
}

func (f *fakeEngine) SyncNow(ctx context.Context, peer core.DeviceID, ns core.Namespace, progress func(auraSync.Progress)) ([]auraSync.Progress, error) {
	f.syncCalls++
	f.peer, f.ns = peer, ns
	for _, e := range f.events {
		if err := ctx.Err(); err != nil {
			f.stoppedBy = err
			return nil, err
		}
		progress(e)
	}
	return f.finals, f.err
}

func (f *fakeEngine) calls() int { return f.statusCalls + f.syncCalls }

// progressStream collects what SyncNow sends; the send numbered failAt
// (from 1) fails.
type progressStream struct {
	grpc.ServerStreamingServer[syncv1.SyncProgress]
	ctx      context.Context
	failAt   int
	attempts int
	sent     []*syncv1.SyncProgress
}

var errGone = errors.New("transport is closing")

func (s *progressStream) Context() context.Context {
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

func (s *progressStream) Send(m *syncv1.SyncProgress) error {
	s.attempts++
	if s.attempts == s.failAt {
		return errGone
	}
	s.sent = append(s.sent, m)
	return nil
}

// Every method: input refused before the engine sees it, prefixes resolved
// against the status, and the engine's errors, each with the code the
// caller gets.
func TestValidationAndCodes(t *testing.T) {
	ctx := context.Background()
	status := func(peer, ns string) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.GetSyncStatus(ctx, &syncv1.GetSyncStatusRequest{Peer: peer, Namespace: ns})
			return err
		}
	}
	now := func(peer, ns string) func(s *Service) error {
		return func(s *Service) error {
			return s.SyncNow(&syncv1.SyncNowRequest{Peer: peer, Namespace: ns}, &progressStream{})
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name      string
		call      func(s *Service) error
		domainErr error
		code      codes.Code
		reaches   bool
		msg       string
	}{
		{"status: garbage peer", status("nobody", ""), nil, codes.InvalidArgument, false, "neither a device id nor a peer id"},
		{"status: prefix too short", status("abcdef1", ""), nil, codes.InvalidArgument, false, "at least 8 digits"},
		{"status: garbage namespace", status("", "space/11"), nil, codes.InvalidArgument, false, "unknown kind"},
		{"status: namespace without kind", status("", "11000000"), nil, codes.InvalidArgument, false, "want authority/<id> or context/<id>"},
		{"status: namespace prefix too short", status("", "context/1100"), nil, codes.InvalidArgument, false, "at least 8 digits"},
		{"status: unknown peer prefix", status("00112233", ""), nil, codes.NotFound, true, "peer 00112233"},
		{"status: ambiguous peer prefix", status("abcdef12", ""), nil, codes.InvalidArgument, true, peerA.String() + ", " + peerB.String()},
		{"status: prefix of another kind's namespace", status("", "authority/11000000"), nil, codes.NotFound, true, "namespace 11000000"},
		{"status: ok", status(peerA.String()[:10], "context/11000000"), nil, codes.OK, true, ""},
		{"now: garbage peer", now("nobody", ""), nil, codes.InvalidArgument, false, ""},
		{"now: garbage namespace", now("", "context/zz"), nil, codes.InvalidArgument, false, ""},
		{"now: ambiguous peer prefix", now("ABCDEF12", ""), nil, codes.InvalidArgument, true, "ambiguous"},
		{"now: unknown peer prefix", now("00112233", ""), nil, codes.NotFound, true, ""},
		{"now: nothing shared", now(peerA.String(), ""), fmt.Errorf("%s: %w", peerA, core.ErrNotFound), codes.NotFound, true, ""},
		{"now: peer unreachable", now(peerA.String(), ""), fmt.Errorf("dial: %w", core.ErrUnavailable), codes.Unavailable, true, ""},
		{"now: caller gave up", now("", ""), context.Canceled, codes.Canceled, true, ""},
		{"now: ok", now(peerA.String()[:10], nsX.String()), nil, codes.OK, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &fakeEngine{status: listed(), err: tc.domainErr}
			err := tc.call(New(e))
			msg := rpctest.CheckOutcome(t, err, tc.code, e.calls(), tc.reaches, tc.domainErr)
			if !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q lacks %q", msg, tc.msg)
			}
			if tc.code != codes.OK && tc.domainErr == nil && e.syncCalls > 0 {
				t.Fatal("SyncNow ran for a request that named no peer or namespace it could")
			}
		})
	}
	// A context the client ended reaches the engine as the call's.
	e := &fakeEngine{events: []auraSync.Progress{{Peer: peerA}}}
	err := New(e).SyncNow(&syncv1.SyncNowRequest{}, &progressStream{ctx: canceled})
	if !errors.Is(err, context.Canceled) || !errors.Is(e.stoppedBy, context.Canceled) {
		t.Fatalf("err %v, engine stopped by %v", err, e.stoppedBy)
	}
}

// What the network failed carries the peer reason, so auractl can tell it
// from aurad itself being unavailable; a refusal of the request does not.
func TestPeerFailuresCarryTheReason(t *testing.T) {
	tests := []struct {
		name      string
		domainErr error
		reason    string
	}{
		{"unreachable", fmt.Errorf("dial: %w", core.ErrUnavailable), rpc.ReasonPeerUnreachable},
		{"a session failed", fmt.Errorf("abcdef120100: timeout: %w", core.ErrUnavailable), rpc.ReasonPeerUnreachable},
		{"peer stopped answering", fmt.Errorf("no answer: %w", context.DeadlineExceeded), rpc.ReasonPeerUnreachable},
		{"nothing shared", fmt.Errorf("nothing shared: %w", core.ErrNotFound), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &fakeEngine{err: tc.domainErr}
			st, _ := rpc.ToStatus(New(e).SyncNow(&syncv1.SyncNowRequest{Peer: peerA.String()}, &progressStream{}))
			if got := rpc.Reason(st.Err()); got != tc.reason {
				t.Fatalf("reason %q, want %q (%v)", got, tc.reason, st)
			}
		})
	}
}

// Filters pick rows by full id or prefix; each row carries every field,
// timestamps unset where the engine has none.
func TestStatusFiltersAndConverts(t *testing.T) {
	started := time.Unix(1_700_000_000, 0)
	full := auraSync.PeerStatus{
		Peer: peerB, Namespace: nsY, Context: ctxX, LastStarted: started, LastFinished: started.Add(time.Second),
		LastMode: auraSync.ModeSketch, LastRole: auraSync.RoleResponder, LastRounds: 2, LastError: "timeout",
		Sessions: 5, Failures: 1, FactsIn: 10, FactsOut: 11, BytesIn: 1000, BytesOut: 1100, Refused: 3,
	}
	e := &fakeEngine{status: append(listed(), full)}
	s := New(e)
	get := func(peer, ns string) []*syncv1.PeerSyncStatus {
		t.Helper()
		resp, err := s.GetSyncStatus(context.Background(), &syncv1.GetSyncStatusRequest{Peer: peer, Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatuses()
	}
	sessions := func(rows []*syncv1.PeerSyncStatus) []uint64 {
		var out []uint64
		for _, r := range rows {
			out = append(out, r.GetSessions())
		}
		return out
	}
	for _, tc := range []struct {
		peer, ns string
		want     []uint64
	}{
		{"", "", []uint64{1, 2, 3, 5}},
		{peerA.String(), "", []uint64{1, 2}},
		{"abcdef1202", "", []uint64{3, 5}},
		{"", nsX.String(), []uint64{1, 3}},
		{"", "authority/22000000", []uint64{2, 5}},
		{"abcdef1202", "authority/2200000000", []uint64{5}},
		// A full id filters; it need not be listed.
		{core.DeviceID{9}.String(), "", nil},
	} {
		if got := sessions(get(tc.peer, tc.ns)); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("peer %q namespace %q: sessions %v, want %v", tc.peer, tc.ns, got, tc.want)
		}
	}
	want := &syncv1.PeerSyncStatus{
		PeerDeviceId: peerB.String(), Namespace: nsY.String(), Context: "context/" + ctxX.String(),
		LastStarted: timestamppb.New(started), LastFinished: timestamppb.New(started.Add(time.Second)),
		LastMode: syncv1.SyncMode_SYNC_MODE_SKETCH, LastRole: syncv1.SyncRole_SYNC_ROLE_RESPONDER, LastRounds: 2, LastError: "timeout",
		Sessions: 5, Failures: 1, FactsIn: 10, FactsOut: 11, BytesIn: 1000, BytesOut: 1100, Refused: 3,
	}
	if got := get("", "")[3]; !proto.Equal(got, want) {
		t.Errorf("converted\n%v\nwant\n%v", got, want)
	}
	if got := get("", "")[1]; got.GetLastStarted() != nil || got.GetContext() != "" || got.GetLastMode() != syncv1.SyncMode_SYNC_MODE_UNSPECIFIED {
		t.Errorf("a row with no session yet: %v", got)
	}
}

// Progress reaches the stream as the engine reports it, in order; a final
// the engine returned without reporting is sent once at the end, one it
// reported is not sent again. Prefixes reach the engine resolved.
func TestSyncNowForwardsProgressInOrder(t *testing.T) {
	doneA := auraSync.Progress{Peer: peerA, Namespace: nsX, Context: ctxX, Phase: auraSync.PhaseDone, Mode: auraSync.ModeSketch, Rounds: 1, FactsIn: 4, FactsExpected: 4, BytesIn: 900, BytesOut: 100}
	failedB := auraSync.Progress{Peer: peerB, Namespace: nsX, Context: ctxX, Phase: auraSync.PhaseFailed, Mode: auraSync.ModeRange, Rounds: 3, Err: "timeout"}
	e := &fakeEngine{
		status: listed(),
		events: []auraSync.Progress{
			{Peer: peerA, Namespace: nsX, Context: ctxX, Phase: auraSync.PhaseReconciling},
			{Peer: peerA, Namespace: nsX, Context: ctxX, Phase: auraSync.PhaseTransferring, Mode: auraSync.ModeSketch, Rounds: 1, FactsExpected: 4},
			{Peer: peerB, Namespace: nsX, Context: ctxX, Phase: auraSync.PhaseReconciling},
			doneA,
		},
		// B's failure was never reported through progress.
		finals: []auraSync.Progress{doneA, failedB},
	}
	st := &progressStream{}
	if err := New(e).SyncNow(&syncv1.SyncNowRequest{Namespace: "context/11000000"}, st); err != nil {
		t.Fatal(err)
	}
	if e.peer != (core.DeviceID{}) || e.ns != nsX {
		t.Fatalf("engine asked for peer %s namespace %s", e.peer, e.ns)
	}
	var want []*syncv1.SyncProgress
	for _, p := range append(e.events, failedB) {
		want = append(want, progressToProto(p))
	}
	if len(st.sent) != len(want) {
		t.Fatalf("sent %d messages, want %d: %v", len(st.sent), len(want), st.sent)
	}
	for i := range want {
		if !proto.Equal(st.sent[i], want[i]) {
			t.Errorf("message %d: %v, want %v", i, st.sent[i], want[i])
		}
	}
	last := st.sent[len(st.sent)-1]
	if last.GetPhase() != syncv1.SyncPhase_SYNC_PHASE_FAILED || last.GetError() != "timeout" || last.GetMode() != syncv1.SyncMode_SYNC_MODE_RANGE || last.GetRounds() != 3 {
		t.Errorf("B's final: %v", last)
	}
	if st.sent[3].GetBytesIn() != 900 || st.sent[3].GetFactsIn() != 4 || st.sent[3].GetContext() != "context/"+ctxX.String() {
		t.Errorf("A's final: %v", st.sent[3])
	}
}

// A stream that cannot take a message ends the call with its error: the
// engine's sessions are stopped and nothing more is sent.
func TestSendErrorEndsTheCall(t *testing.T) {
	var events []auraSync.Progress
	for i := range 5 {
		events = append(events, auraSync.Progress{Peer: peerA, Namespace: nsX, Phase: auraSync.PhaseTransferring, FactsIn: uint64(i)})
	}
	e := &fakeEngine{events: events, finals: events[4:]}
	st := &progressStream{failAt: 2}
	err := New(e).SyncNow(&syncv1.SyncNowRequest{}, st)
	if !errors.Is(err, errGone) {
		t.Fatalf("err %v, want the stream's", err)
	}
	if !errors.Is(e.stoppedBy, context.Canceled) {
		t.Fatalf("the engine ran on after the stream failed (stopped by %v)", e.stoppedBy)
	}
	if st.attempts != 2 || len(st.sent) != 1 {
		t.Fatalf("%d sends attempted, %d sent; want 2 and 1", st.attempts, len(st.sent))
	}
}

// Every method has a permission: reading status is Read, syncing (which
// sends messages and spends budget) is Write.
func TestPermissions(t *testing.T) {
	p := Permissions()
	if len(p) != len(syncv1.SyncService_ServiceDesc.Methods)+len(syncv1.SyncService_ServiceDesc.Streams) {
		t.Fatalf("%d permissions for %d methods", len(p), len(syncv1.SyncService_ServiceDesc.Methods)+len(syncv1.SyncService_ServiceDesc.Streams))
	}
	if p[syncv1.SyncService_GetSyncStatus_FullMethodName] != rpc.Read || p[syncv1.SyncService_SyncNow_FullMethodName] != rpc.Write {
		t.Fatalf("permissions %v", p)
	}
}
