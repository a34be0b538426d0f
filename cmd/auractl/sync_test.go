package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
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
	"google.golang.org/protobuf/types/known/timestamppb"

	syncv1 "github.com/aura-p2p/aura/api/proto/aura/sync/v1"
	"github.com/aura-p2p/aura/internal/core"
)

// fakeSync answers status with statuses, and SyncNow with events followed
// by err; with hold it keeps the stream open after the events until the
// client leaves.
type fakeSync struct {
	syncv1.UnimplementedSyncServiceServer
	mu         sync.Mutex
	statuses   []*syncv1.PeerSyncStatus
	events     []*syncv1.SyncProgress
	err        error
	hold       bool
	statusReqs []*syncv1.GetSyncStatusRequest
	nowReqs    []*syncv1.SyncNowRequest
}

func (f *fakeSync) GetSyncStatus(_ context.Context, req *syncv1.GetSyncStatusRequest) (*syncv1.GetSyncStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statusReqs = append(f.statusReqs, req)
	if f.err != nil {
		return nil, f.err
	}
	return &syncv1.GetSyncStatusResponse{Statuses: f.statuses}, nil
}

func (f *fakeSync) SyncNow(req *syncv1.SyncNowRequest, s grpc.ServerStreamingServer[syncv1.SyncProgress]) error {
	f.mu.Lock()
	f.nowReqs = append(f.nowReqs, req)
	events, err, hold := f.events, f.err, f.hold
	f.mu.Unlock()
	for _, e := range events {
		if err := s.Send(e); err != nil {
			return err
		}
	}
	if hold {
		<-s.Context().Done()
		return s.Context().Err()
	}
	return err
}

func startSync(t *testing.T, f *fakeSync) string {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "aurad.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	syncv1.RegisterSyncServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return sock
}

var (
	syncPeerA = strings.Repeat("ab", 32)
	syncPeerB = strings.Repeat("cd", 32)
	syncNS    = "context/" + strings.Repeat("11", 32)
	syncAuth  = "authority/" + strings.Repeat("22", 32)
)

// cells splits a table's lines into their cells: tabwriter pads columns
// with two spaces or more, and no cell holds two spaces.
func cells(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1))
	}
	return rows
}

func TestSyncStatus(t *testing.T) {
	now := time.Now()
	f := &fakeSync{statuses: []*syncv1.PeerSyncStatus{
		{
			PeerDeviceId: syncPeerA, Namespace: syncNS, Context: syncNS,
			LastStarted: timestamppb.New(now.Add(-73 * time.Hour)), LastFinished: timestamppb.New(now.Add(-72*time.Hour - time.Minute)),
			LastMode: syncv1.SyncMode_SYNC_MODE_SKETCH, LastRole: syncv1.SyncRole_SYNC_ROLE_INITIATOR, LastRounds: 2,
			Sessions: 4, FactsIn: 12, FactsOut: 3, BytesIn: 1500, BytesOut: 300, Refused: 1,
		},
		{
			PeerDeviceId: syncPeerB, Namespace: syncAuth, LastStarted: timestamppb.New(now.Add(-time.Second)),
			LastError: "timeout", Sessions: 1, Failures: 1,
		},
	}}
	sock := startSync(t, f)

	r := runCtl(t, nil, nil, "--socket", sock, "sync", "status")
	mustOK(t, r)
	want := [][]string{
		{"PEER", "NAMESPACE", "LAST", "MODE", "ROLE", "ROUNDS", "FACTS IN/OUT", "BYTES IN/OUT", "REFUSED", "ERROR"},
		{"abababababababab", "context/1111111111111111", "3d ago", "sketch", "initiator", "2", "12/3", "1.5 kB/0.3 kB", "1", "-"},
		{"cdcdcdcdcdcdcdcd", "authority/2222222222222222", "running", "-", "-", "0", "0/0", "0.0 kB/0.0 kB", "0", "timeout"},
	}
	if got := cells(r.out); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("table\n%s\ncells %q\nwant  %q", r.out, got, want)
	}

	// -o json is the response, exactly; the filters reach aurad as given.
	r = runCtl(t, nil, nil, "--socket", sock, "-o", "json", "sync", "status", "--peer", "abababab", "--namespace", "context/11111111")
	mustOK(t, r)
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true, Indent: "  "}.Marshal(&syncv1.GetSyncStatusResponse{Statuses: f.statuses})
	if err != nil {
		t.Fatal(err)
	}
	if r.out != string(b)+"\n" {
		t.Errorf("json output\n%s\nwant\n%s", r.out, b)
	}
	if !strings.Contains(r.out, `"peer_device_id"`) || !strings.Contains(r.out, `"SYNC_MODE_SKETCH"`) {
		t.Errorf("json lacks proto names or enum names: %s", r.out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	wantReqs := []*syncv1.GetSyncStatusRequest{{}, {Peer: "abababab", Namespace: "context/11111111"}}
	if len(f.statusReqs) != 2 || !proto.Equal(f.statusReqs[0], wantReqs[0]) || !proto.Equal(f.statusReqs[1], wantReqs[1]) {
		t.Errorf("requests %v, want %v", f.statusReqs, wantReqs)
	}
}

func progressOf(peer, ns string, phase syncv1.SyncPhase, in, expected uint64) *syncv1.SyncProgress {
	return &syncv1.SyncProgress{PeerDeviceId: peer, Namespace: ns, Context: syncNS, Phase: phase, Mode: syncv1.SyncMode_SYNC_MODE_RANGE,
		Rounds: 3, FactsIn: in, FactsOut: 1, FactsExpected: expected, BytesIn: 2_500_000, BytesOut: 100}
}

// Two sessions: B's reported first, both end done.
func twoSessions() []*syncv1.SyncProgress {
	return []*syncv1.SyncProgress{
		progressOf(syncPeerB, syncNS, syncv1.SyncPhase_SYNC_PHASE_RECONCILING, 0, 0),
		progressOf(syncPeerA, syncNS, syncv1.SyncPhase_SYNC_PHASE_TRANSFERRING, 5, 10),
		progressOf(syncPeerB, syncNS, syncv1.SyncPhase_SYNC_PHASE_DONE, 0, 0),
		progressOf(syncPeerA, syncNS, syncv1.SyncPhase_SYNC_PHASE_DONE, 10, 10),
	}
}

// With -o json every report is one line of compact JSON, in the order aurad
// sent them; the peer and namespace reach aurad as given.
func TestSyncNowJSONLines(t *testing.T) {
	f := &fakeSync{events: twoSessions()}
	sock := startSync(t, f)
	r := runCtl(t, nil, nil, "--socket", sock, "-o", "json", "sync", "now", "abababab", "--namespace", "context/11111111")
	mustOK(t, r)
	var want strings.Builder
	for _, e := range f.events {
		b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		want.Write(append(b, '\n'))
	}
	if r.out != want.String() || r.err != "" {
		t.Errorf("stdout\n%s\nwant\n%s\nstderr %q", r.out, want.String(), r.err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.nowReqs) != 1 || !proto.Equal(f.nowReqs[0], &syncv1.SyncNowRequest{Peer: "abababab", Namespace: "context/11111111"}) {
		t.Errorf("requests %v", f.nowReqs)
	}
}

// Off a terminal there is no bar: one line per session at the end, sorted
// by peer, as each ended.
func TestSyncNowSummary(t *testing.T) {
	f := &fakeSync{events: twoSessions()}
	r := runCtl(t, nil, nil, "--socket", startSync(t, f), "sync", "now")
	mustOK(t, r)
	want := [][]string{
		{"PEER", "NAMESPACE", "RESULT", "MODE", "ROUNDS", "FACTS IN/OUT", "BYTES IN/OUT"},
		{"abababababababab", "context/1111111111111111", "done", "range", "3", "10/1", "2.5 MB/0.1 kB"},
		{"cdcdcdcdcdcdcdcd", "context/1111111111111111", "done", "range", "3", "0/1", "2.5 MB/0.1 kB"},
	}
	if got := cells(r.out); fmt.Sprint(got) != fmt.Sprint(want) || r.err != "" {
		t.Errorf("stdout\n%s\ncells %q\nwant  %q\nstderr %q", r.out, got, want, r.err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.nowReqs) != 1 || !proto.Equal(f.nowReqs[0], &syncv1.SyncNowRequest{}) {
		t.Errorf("requests %v, want one for every peer and namespace", f.nowReqs)
	}
}

// aurad's answer for a failure of the network, as internal/rpc sends it.
func syncPeerFailure(msg string) error {
	return peerFailureStatus(fmt.Errorf("%s: %w", msg, core.ErrUnavailable))
}

// A failed session exits 13 with one line naming its peer, namespace and
// reason, whether aurad ended the call as a failure (as it does) or not;
// the summary still shows every session. Other failures keep their codes.
func TestSyncNowFailures(t *testing.T) {
	failedA := progressOf(syncPeerA, syncNS, syncv1.SyncPhase_SYNC_PHASE_FAILED, 2, 10)
	failedA.Error = "timeout"
	failedB := progressOf(syncPeerB, syncAuth, syncv1.SyncPhase_SYNC_PHASE_FAILED, 0, 0)
	failedB.Error = "inconsistent"
	doneB := progressOf(syncPeerB, syncNS, syncv1.SyncPhase_SYNC_PHASE_DONE, 0, 0)
	lineA := "Error: unavailable: sync with abababababababab over context/1111111111111111 failed: timeout\n"
	tests := []struct {
		name    string
		events  []*syncv1.SyncProgress
		err     error
		args    []string
		code    int
		line    string
		summary []string // rows' first and third cells
	}{
		{"aurad ends the call as a peer's failure", []*syncv1.SyncProgress{doneB, failedA}, syncPeerFailure("abababababab: timeout: sync session failed"),
			nil, ExitPeerUnreachable, lineA, []string{"abababababababab failed: timeout", "cdcdcdcdcdcdcdcd done"}},
		{"aurad ends the call well", []*syncv1.SyncProgress{failedA, doneB}, nil,
			nil, ExitPeerUnreachable, lineA, []string{"abababababababab failed: timeout", "cdcdcdcdcdcdcdcd done"}},
		{"several failed", []*syncv1.SyncProgress{failedB, failedA}, syncPeerFailure("2 sessions failed"),
			nil, ExitPeerUnreachable, strings.TrimSuffix(lineA, "\n") + " (and 1 more session failed)\n",
			[]string{"abababababababab failed: timeout", "cdcdcdcdcdcdcdcd failed: inconsistent"}},
		{"-o json too", []*syncv1.SyncProgress{failedA}, syncPeerFailure("timeout"),
			[]string{"-o", "json"}, ExitPeerUnreachable, lineA, nil},
		{"peer unreachable before any session", nil, syncPeerFailure("dial abababababab: connection refused"),
			nil, ExitPeerUnreachable, "Error: unavailable: dial abababababab: connection refused\n", nil},
		{"nothing shared", nil, status.Error(codes.NotFound, "abab: no namespace shared with that peer"),
			nil, ExitNotFound, "Error: not found: abab: no namespace shared with that peer\n", nil},
		{"aurad stopping", nil, status.Error(codes.Unavailable, "aurad is shutting down"),
			nil, ExitUnavailable, "Error: unavailable: aurad is shutting down\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := startSync(t, &fakeSync{events: tt.events, err: tt.err})
			r := runCtl(t, nil, nil, append(append([]string{"--socket", sock}, tt.args...), "sync", "now")...)
			if r.code != tt.code || r.err != tt.line {
				t.Fatalf("exit %d stderr %q; want exit %d stderr %q", r.code, r.err, tt.code, tt.line)
			}
			if slices.Contains(tt.args, "json") {
				if n := strings.Count(r.out, "\n"); n != len(tt.events) {
					t.Fatalf("%d JSON lines for %d reports:\n%s", n, len(tt.events), r.out)
				}
				return
			}
			var got []string
			for _, row := range cells(r.out)[1:] {
				got = append(got, row[0]+" "+row[2])
			}
			if tt.summary != nil && fmt.Sprint(got) != fmt.Sprint(tt.summary) {
				t.Fatalf("summary %q, want %q:\n%s", got, tt.summary, r.out)
			}
		})
	}
}

// An explicit --timeout bounds the run, and says how far it got; sessions
// left running are shown where they stood. The timeout leaves the fake's
// first report time to arrive on a loaded machine (with none, the error is
// "no answer from aurad", as CI once saw at 2 s).
func TestSyncNowTimeout(t *testing.T) {
	sock := startSync(t, &fakeSync{events: []*syncv1.SyncProgress{progressOf(syncPeerA, syncNS, syncv1.SyncPhase_SYNC_PHASE_TRANSFERRING, 1, 10)}, hold: true})
	r := runCtl(t, nil, nil, "--socket", sock, "--timeout", "5s", "sync", "now")
	if r.code != ExitDeadlineExceeded || r.err != "Error: deadline exceeded: --timeout 5s passed: 0 of 1 sessions finished\n" {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	if rows := cells(r.out); len(rows) != 2 || rows[1][2] != "transferring" {
		t.Fatalf("summary %q", rows)
	}
}

func TestAgo(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		before time.Duration
		want   string
	}{
		{-time.Minute, "just now"},
		{999 * time.Millisecond, "just now"},
		{time.Second, "1s ago"},
		{59 * time.Second, "59s ago"},
		{time.Minute, "1m ago"},
		{119 * time.Minute, "1h ago"},
		{23*time.Hour + 59*time.Minute, "23h ago"},
		{24 * time.Hour, "1d ago"},
		{400 * 24 * time.Hour, "400d ago"},
	} {
		if got := ago(now.Add(-tc.before), now); got != tc.want {
			t.Errorf("%s before: %q, want %q", tc.before, got, tc.want)
		}
	}
}

func TestLastSync(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(-d)) }
	for _, tc := range []struct {
		s    *syncv1.PeerSyncStatus
		want string
	}{
		{&syncv1.PeerSyncStatus{}, "never"},
		{&syncv1.PeerSyncStatus{LastStarted: ts(time.Second)}, "running"},
		{&syncv1.PeerSyncStatus{LastStarted: ts(time.Second), LastFinished: ts(time.Hour)}, "running"},
		{&syncv1.PeerSyncStatus{LastStarted: ts(time.Hour + time.Second), LastFinished: ts(time.Hour)}, "1h ago"},
	} {
		if got := lastSync(tc.s, now); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.s, got, tc.want)
		}
	}
}
