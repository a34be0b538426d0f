package main

import (
	"context"
	"encoding/json"
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

	crdtv1 "github.com/aura-p2p/aura/api/proto/aura/crdt/v1"
	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
)

// Fakes of aurad's services: canned answers, recorded requests. The real
// daemon is exercised end to end elsewhere; these pin down what auractl sends
// and how it shows what comes back.

type fakeNode struct {
	nodev1.UnimplementedNodeServiceServer
	mu        sync.Mutex
	statusErr error
	block     bool // GetStatus waits for the caller to give up
	shutdowns int
}

func (f *fakeNode) GetStatus(ctx context.Context, _ *nodev1.GetStatusRequest) (*nodev1.GetStatusResponse, error) {
	f.mu.Lock()
	block, err := f.block, f.statusErr
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return &nodev1.GetStatusResponse{
		DeviceId:    strings.Repeat("d", 64),
		AuthorityId: strings.Repeat("a", 64),
		Version:     "v9.9.9",
		StartedAt:   timestamppb.New(time.Unix(1700000000, 0)),
		Uptime:      durationpb.New(90*time.Minute + 1500*time.Millisecond),
		DataDir:     "/var/lib/aurad",
		Socket:      "/run/aurad/aurad.sock",
		Journal:     &nodev1.JournalStats{FactCount: 42, NamespaceCount: 2, LastSeq: 42, Orphans: 3, OrphanBytes: 900, OrphansEvicted: 7},
		PeerId:      "12D3KooWtest",
	}, nil
}

func (f *fakeNode) Shutdown(context.Context, *nodev1.ShutdownRequest) (*nodev1.ShutdownResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdowns++
	return &nodev1.ShutdownResponse{}, nil
}

type fakeJournal struct {
	journalv1.UnimplementedJournalServiceServer
	mu       sync.Mutex
	appends  []*journalv1.AppendFactRequest
	lists    []*journalv1.ListFactsRequest
	watches  []*journalv1.WatchFactsRequest
	err      error // returned by every unary call when set
	facts    []*journalv1.Fact
	nextPage string
	// holdWatch keeps WatchFacts open after sending facts, until the client leaves.
	holdWatch bool
}

func (f *fakeJournal) AppendFact(_ context.Context, req *journalv1.AppendFactRequest) (*journalv1.AppendFactResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.appends = append(f.appends, req)
	return &journalv1.AppendFactResponse{Id: strings.Repeat("f", 64), Namespace: "authority/x", Lamport: 5, Seq: 9}, nil
}

func (f *fakeJournal) GetFact(_ context.Context, req *journalv1.GetFactRequest) (*journalv1.GetFactResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	for _, fact := range f.facts {
		if fact.Id == req.Id {
			return &journalv1.GetFactResponse{Fact: fact}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "fact %s not found", req.Id)
}

func (f *fakeJournal) ListFacts(_ context.Context, req *journalv1.ListFactsRequest) (*journalv1.ListFactsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, req)
	return &journalv1.ListFactsResponse{Facts: f.facts, NextPageToken: f.nextPage}, nil
}

func (f *fakeJournal) WatchFacts(req *journalv1.WatchFactsRequest, s grpc.ServerStreamingServer[journalv1.WatchFactsResponse]) error {
	f.mu.Lock()
	f.watches = append(f.watches, req)
	facts, hold := f.facts, f.holdWatch
	f.mu.Unlock()
	for _, fact := range facts {
		if fact.Seq <= req.AfterSeq {
			continue
		}
		if err := s.Send(&journalv1.WatchFactsResponse{Fact: fact}); err != nil {
			return err
		}
	}
	if hold {
		<-s.Context().Done()
	}
	return nil
}

type fakeCrdt struct {
	crdtv1.UnimplementedCrdtServiceServer
	mu      sync.Mutex
	updates []*crdtv1.UpdateRequest
	objects map[string]*crdtv1.Object
}

func (f *fakeCrdt) Update(_ context.Context, req *crdtv1.UpdateRequest) (*crdtv1.UpdateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, req)
	o := f.objects[req.Name]
	if o == nil {
		o = &crdtv1.Object{Namespace: req.Namespace, Name: req.Name}
		f.objects[req.Name] = o
	}
	switch op := req.Op.(type) {
	case *crdtv1.UpdateRequest_CounterAdd:
		o.Kind = crdtv1.ObjectKind_OBJECT_KIND_COUNTER
		o.Counter += op.CounterAdd.Delta
	case *crdtv1.UpdateRequest_SetAdd:
		o.Kind = crdtv1.ObjectKind_OBJECT_KIND_SET
		o.Elements = append(o.Elements, op.SetAdd.Element)
	default:
		return nil, status.Error(codes.Unimplemented, "fake handles counters and set adds")
	}
	o.Updates++
	return &crdtv1.UpdateResponse{FactId: strings.Repeat("c", 64), Object: proto.Clone(o).(*crdtv1.Object)}, nil
}

func (f *fakeCrdt) Get(_ context.Context, req *crdtv1.GetRequest) (*crdtv1.GetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[req.Name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "object %s not found", req.Name)
	}
	return &crdtv1.GetResponse{Object: o}, nil
}

func (f *fakeCrdt) List(_ context.Context, req *crdtv1.ListRequest) (*crdtv1.ListResponse, error) {
	return &crdtv1.ListResponse{
		Objects:       []*crdtv1.ObjectSummary{{Name: "hits", Kind: crdtv1.ObjectKind_OBJECT_KIND_COUNTER, Updates: 3}},
		NextPageToken: "tok2",
	}, nil
}

func (f *fakeCrdt) Watch(req *crdtv1.WatchRequest, s grpc.ServerStreamingServer[crdtv1.WatchResponse]) error {
	for i, v := range []int64{1, 2, 5} {
		id := ""
		if i > 0 {
			id = strings.Repeat("e", 64)
		}
		o := &crdtv1.Object{Namespace: req.Namespace, Name: req.Name, Kind: crdtv1.ObjectKind_OBJECT_KIND_COUNTER, Counter: v}
		if err := s.Send(&crdtv1.WatchResponse{Object: o, FactId: id}); err != nil {
			return err
		}
	}
	return nil
}

type fakeDaemon struct {
	node    *fakeNode
	journal *fakeJournal
	crdt    *fakeCrdt
	socket  string
}

// startDaemon serves the fakes on a unix socket in a short temp dir.
func startDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{
		node:    &fakeNode{},
		journal: &fakeJournal{},
		crdt:    &fakeCrdt{objects: map[string]*crdtv1.Object{}},
		socket:  filepath.Join(shortTempDir(t), "aurad.sock"),
	}
	lis, err := net.Listen("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	nodev1.RegisterNodeServiceServer(srv, d.node)
	journalv1.RegisterJournalServiceServer(srv, d.journal)
	crdtv1.RegisterCrdtServiceServer(srv, d.crdt)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return d
}

func (d *fakeDaemon) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runCtl(t, nil, strings.NewReader(stdin), append([]string{"--socket", d.socket}, args...)...)
}

func mustOK(t *testing.T, r result) {
	t.Helper()
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
}

func TestStatus(t *testing.T) {
	d := startDaemon(t)

	r := d.run(t, "", "-o", "json", "status")
	mustOK(t, r)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.out), &got); err != nil {
		t.Fatalf("%v: %s", err, r.out)
	}
	if got["device_id"] != strings.Repeat("d", 64) || got["authority_id"] != strings.Repeat("a", 64) {
		t.Errorf("ids: %v", got)
	}
	if j := got["journal"].(map[string]any); j["fact_count"] != "42" || j["orphans"] != "3" || j["orphans_evicted"] != "7" { // uint64 is a JSON string in protojson
		t.Errorf("journal: %v", j)
	}

	r = d.run(t, "", "status")
	mustOK(t, r)
	for _, want := range []string{
		"device id:     " + strings.Repeat("d", 64),
		"version:       v9.9.9",
		"uptime:        1h30m2s",
		"facts:         42",
		"orphans:       3 (900 bytes, 7 evicted)",
	} {
		if !strings.Contains(r.out, want+"\n") {
			t.Errorf("table lacks %q:\n%s", want, r.out)
		}
	}
}

func TestFactAppend(t *testing.T) {
	d := startDaemon(t)

	r := d.run(t, "", "fact", "append", "--type", "note", "--payload", "hi there", "--namespace", "context/abc", "--schema-version", "2")
	mustOK(t, r)
	if r.out != strings.Repeat("f", 64)+"\n" {
		t.Errorf("table output %q, want the id", r.out)
	}
	r = d.run(t, "binary\x00in", "-o", "json", "fact", "append", "--type", "blob", "--payload", "-")
	mustOK(t, r)
	var resp journalv1.AppendFactResponse
	if err := protojson.Unmarshal([]byte(r.out), &resp); err != nil || resp.Id != strings.Repeat("f", 64) || resp.Seq != 9 {
		t.Errorf("json output %q: %v", r.out, err)
	}
	if !strings.Contains(r.out, `"id"`) {
		t.Errorf("json lacks id: %s", r.out)
	}

	d.journal.mu.Lock()
	defer d.journal.mu.Unlock()
	want := []*journalv1.AppendFactRequest{
		{Namespace: "context/abc", TypeId: "note", SchemaVersion: 2, Payload: []byte("hi there")},
		{TypeId: "blob", Payload: []byte("binary\x00in")},
	}
	if len(d.journal.appends) != len(want) {
		t.Fatalf("%d appends, want %d", len(d.journal.appends), len(want))
	}
	for i := range want {
		if !proto.Equal(d.journal.appends[i], want[i]) {
			t.Errorf("append %d = %v, want %v", i, d.journal.appends[i], want[i])
		}
	}
}

func TestServerErrorsBecomeOneLineAndExitCode(t *testing.T) {
	tests := []struct {
		err  error
		code int
		line string
	}{
		{status.Error(codes.InvalidArgument, "payload is 70000 bytes, limit 65536"), ExitInvalidArgument, "Error: invalid argument: payload is 70000 bytes, limit 65536"},
		{status.Error(codes.NotFound, "namespace context/zz not found"), ExitNotFound, "Error: not found: namespace context/zz not found"},
		{status.Error(codes.AlreadyExists, "dup"), ExitAlreadyExists, "Error: already exists: dup"},
		{status.Error(codes.FailedPrecondition, "wrong kind"), ExitFailedPrecondition, "Error: failed precondition: wrong kind"},
		{status.Error(codes.ResourceExhausted, "budget"), ExitResourceExhausted, "Error: resource exhausted: budget"},
		{status.Error(codes.PermissionDenied, "not a member"), ExitPermissionDenied, "Error: permission denied: not a member"},
		{status.Error(codes.Internal, "bug"), ExitError, "Error: internal: bug"},
		// aurad answering Unavailable (say, while starting) is not "not running".
		{status.Error(codes.Unavailable, "node is starting"), ExitUnavailable, "Error: unavailable: node is starting"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			d := startDaemon(t)
			d.journal.err = tt.err
			r := d.run(t, "", "fact", "append", "--type", "t", "--payload", "x")
			if r.code != tt.code || r.err != tt.line+"\n" || r.out != "" {
				t.Errorf("exit %d stderr %q stdout %q; want exit %d stderr %q", r.code, r.err, r.out, tt.code, tt.line)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	d := startDaemon(t)
	d.node.block = true
	start := time.Now()
	r := d.run(t, "", "--timeout", "200ms", "status")
	if r.code != ExitDeadlineExceeded {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	if want := "Error: deadline exceeded: no answer from aurad at " + d.socket + " within 200ms\n"; r.err != want {
		t.Errorf("stderr %q, want %q", r.err, want)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("took %s", el)
	}
}

func testFacts() []*journalv1.Fact {
	return []*journalv1.Fact{
		{Id: strings.Repeat("1", 64), Namespace: "authority/x", TypeId: "note", Payload: []byte("first note"), Author: strings.Repeat("a", 64), Lamport: 1, Seq: 1, CreatedAt: timestamppb.Now()},
		{Id: strings.Repeat("2", 64), Namespace: "authority/x", TypeId: "blob", Payload: []byte{0x00, 0xff}, Author: strings.Repeat("a", 64), Lamport: 2, Seq: 2},
		{Id: strings.Repeat("3", 64), Namespace: "authority/x", TypeId: "note", Payload: []byte(strings.Repeat("long ", 30)), Author: strings.Repeat("b", 64), Lamport: 3, Seq: 3},
	}
}

func TestFactGet(t *testing.T) {
	d := startDaemon(t)
	d.journal.facts = testFacts()

	r := d.run(t, "", "fact", "get", strings.Repeat("2", 64))
	mustOK(t, r)
	for _, want := range []string{"type:", "blob", "payload:", "0x00ff"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
	r = d.run(t, "", "fact", "get", "beef")
	if r.code != ExitNotFound || r.err != "Error: not found: fact beef not found\n" {
		t.Errorf("missing fact: exit %d stderr %q", r.code, r.err)
	}
}

func TestFactList(t *testing.T) {
	d := startDaemon(t)
	d.journal.facts = testFacts()
	d.journal.nextPage = "NEXT"

	r := d.run(t, "", "fact", "list", "--type", "note", "--namespace", "authority/x", "--limit", "3", "--page-token", "PREV")
	mustOK(t, r)
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Fatalf("table:\n%s", r.out)
	}
	if !strings.Contains(lines[3], "long long") || !strings.HasSuffix(lines[3], "…") {
		t.Errorf("long payload not truncated: %q", lines[3])
	}
	if r.err != "more facts: repeat with --page-token NEXT\n" {
		t.Errorf("hint %q", r.err)
	}

	r = d.run(t, "", "-o", "json", "fact", "list")
	mustOK(t, r)
	var got struct {
		Facts []struct {
			ID      string `json:"id"`
			TypeID  string `json:"type_id"`
			Payload []byte `json:"payload"` // base64, as protojson writes bytes
		} `json:"facts"`
		Next string `json:"next_page_token"`
	}
	if err := json.Unmarshal([]byte(r.out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Facts) != 3 || got.Facts[0].TypeID != "note" || string(got.Facts[0].Payload) != "first note" || got.Next != "NEXT" {
		t.Errorf("json: %+v", got)
	}
	if r.err != "" {
		t.Errorf("json mode wrote a hint: %q", r.err)
	}

	d.journal.mu.Lock()
	defer d.journal.mu.Unlock()
	want := &journalv1.ListFactsRequest{TypeId: "note", Namespace: "authority/x", PageSize: 3, PageToken: "PREV"}
	if !proto.Equal(d.journal.lists[0], want) {
		t.Errorf("request %v, want %v", d.journal.lists[0], want)
	}
}

func TestFactWatchJSONLines(t *testing.T) {
	d := startDaemon(t)
	d.journal.facts = testFacts()

	r := d.run(t, "", "-o", "json", "fact", "watch", "--after", "1", "--type", "note")
	mustOK(t, r)
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 facts after seq 1:\n%s", r.out)
	}
	for i, l := range lines {
		var m journalv1.WatchFactsResponse
		if err := protojson.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if m.Fact.Seq != uint64(i+2) {
			t.Errorf("line %d has seq %d", i, m.Fact.Seq)
		}
	}
	d.journal.mu.Lock()
	defer d.journal.mu.Unlock()
	if w := d.journal.watches[0]; w.AfterSeq != 1 || w.TypeId != "note" {
		t.Errorf("watch request %v", w)
	}
}

// Interrupting a watch is its normal end: exit 0, no error line.
func TestFactWatchInterrupted(t *testing.T) {
	d := startDaemon(t)
	d.journal.facts = testFacts()
	d.journal.holdWatch = true

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result)
	go func() {
		done <- runCtlContext(ctx, nil, nil, "--socket", d.socket, "--timeout", "50ms", "fact", "watch")
	}()
	// Longer than --timeout, to show the watch is not bound by it.
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case r := <-done:
		if r.code != ExitOK || r.err != "" {
			t.Errorf("exit %d stderr %q", r.code, r.err)
		}
		if lines := strings.Count(r.out, "\n"); lines != 4 {
			t.Errorf("want header and 3 rows:\n%s", r.out)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not end on cancel")
	}
}

func TestCrdtCounter(t *testing.T) {
	d := startDaemon(t)

	mustOK(t, d.run(t, "", "crdt", "--namespace", "context/c1", "counter", "incr", "hits"))
	r := d.run(t, "", "crdt", "counter", "incr", "hits", "--by", "-3")
	mustOK(t, r)
	if r.out != "-2\n" {
		t.Errorf("incr prints the new value: %q", r.out)
	}
	mustOK(t, d.run(t, "", "crdt", "counter", "decr", "hits", "--by", "2"))
	r = d.run(t, "", "crdt", "counter", "get", "hits")
	mustOK(t, r)
	if r.out != "-4\n" {
		t.Errorf("get: %q", r.out)
	}
	r = d.run(t, "", "-o", "json", "crdt", "counter", "get", "hits")
	mustOK(t, r)
	var resp crdtv1.GetResponse
	if err := protojson.Unmarshal([]byte(r.out), &resp); err != nil || resp.Object.Counter != -4 {
		t.Errorf("json %q: %v", r.out, err)
	}
	// protojson varies its spacing on purpose; compare decoded values.
	var raw map[string]map[string]any
	if err := json.Unmarshal([]byte(r.out), &raw); err != nil || raw["object"]["kind"] != "OBJECT_KIND_COUNTER" {
		t.Errorf("json: %s", r.out)
	}

	d.crdt.mu.Lock()
	deltas := []int64{}
	for _, u := range d.crdt.updates {
		deltas = append(deltas, u.GetCounterAdd().GetDelta())
	}
	ns := d.crdt.updates[0].Namespace
	d.crdt.mu.Unlock()
	if want := []int64{1, -3, -2}; !equalInts(deltas, want) {
		t.Errorf("deltas %v, want %v", deltas, want)
	}
	if ns != "context/c1" {
		t.Errorf("namespace %q", ns)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCrdtKindAndKeyChecks(t *testing.T) {
	d := startDaemon(t)
	d.crdt.objects["tags"] = &crdtv1.Object{Name: "tags", Kind: crdtv1.ObjectKind_OBJECT_KIND_SET, Elements: []string{"a", "b"}}
	d.crdt.objects["cfg"] = &crdtv1.Object{Name: "cfg", Kind: crdtv1.ObjectKind_OBJECT_KIND_MAP, Entries: []*crdtv1.MapEntry{{Key: "k", Value: "v1"}, {Key: "long-key", Value: "v2"}}}

	r := d.run(t, "", "crdt", "counter", "get", "tags")
	if r.code != ExitFailedPrecondition || r.err != "Error: failed precondition: tags is a set, not a counter\n" {
		t.Errorf("kind mismatch: exit %d stderr %q", r.code, r.err)
	}
	r = d.run(t, "", "crdt", "set", "get", "tags")
	mustOK(t, r)
	if r.out != "a\nb\n" {
		t.Errorf("set get %q", r.out)
	}
	r = d.run(t, "", "crdt", "map", "get", "cfg")
	mustOK(t, r)
	if r.out != "k         v1\nlong-key  v2\n" {
		t.Errorf("map get %q", r.out)
	}
	r = d.run(t, "", "crdt", "map", "get", "cfg", "long-key")
	mustOK(t, r)
	if r.out != "v2\n" {
		t.Errorf("map get key %q", r.out)
	}
	r = d.run(t, "", "-o", "json", "crdt", "map", "get", "cfg", "k")
	mustOK(t, r)
	var e crdtv1.MapEntry
	if err := protojson.Unmarshal([]byte(r.out), &e); err != nil || e.Value != "v1" {
		t.Errorf("map get key json %q: %v", r.out, err)
	}
	r = d.run(t, "", "crdt", "map", "get", "cfg", "nope")
	if r.code != ExitNotFound || r.err != "Error: not found: map cfg has no key \"nope\"\n" {
		t.Errorf("missing key: exit %d stderr %q", r.code, r.err)
	}
	r = d.run(t, "", "crdt", "register", "get", "ghost")
	if r.code != ExitNotFound {
		t.Errorf("missing object: exit %d stderr %q", r.code, r.err)
	}
}

func TestCrdtListAndWatch(t *testing.T) {
	d := startDaemon(t)

	r := d.run(t, "", "crdt", "list")
	mustOK(t, r)
	if r.out != "NAME  KIND     UPDATES\nhits  counter  3\n" {
		t.Errorf("list %q", r.out)
	}
	if r.err != "more objects: repeat with --page-token tok2\n" {
		t.Errorf("hint %q", r.err)
	}

	r = d.run(t, "", "crdt", "watch", "hits")
	mustOK(t, r)
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	want := []string{
		"FACT              VALUE",
		"-                 1",
		strings.Repeat("e", 16) + "  2",
		strings.Repeat("e", 16) + "  5",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("watch table:\n%s\nwant:\n%s", r.out, strings.Join(want, "\n"))
	}
	r = d.run(t, "", "-o", "json", "crdt", "--namespace", "context/w", "watch", "hits")
	mustOK(t, r)
	lines = strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("watch json:\n%s", r.out)
	}
	var m crdtv1.WatchResponse
	if err := protojson.Unmarshal([]byte(lines[2]), &m); err != nil || m.Object.Counter != 5 || m.Object.Namespace != "context/w" {
		t.Errorf("last line %q: %v", lines[2], err)
	}
}

func TestVersionAndStop(t *testing.T) {
	d := startDaemon(t)

	r := d.run(t, "", "version")
	mustOK(t, r)
	if !strings.Contains(r.out, "client:") || !strings.Contains(r.out, "daemon:  v9.9.9") || r.err != "" {
		t.Errorf("version: out %q err %q", r.out, r.err)
	}
	r = d.run(t, "", "-o", "json", "version")
	mustOK(t, r)
	var v versionInfo
	if err := json.Unmarshal([]byte(r.out), &v); err != nil || v.Daemon != "v9.9.9" || v.Client == "" {
		t.Errorf("version json %q: %v", r.out, err)
	}

	r = d.run(t, "", "stop")
	mustOK(t, r)
	if r.out != "aurad at "+d.socket+" is shutting down\n" {
		t.Errorf("stop: %q", r.out)
	}
	d.node.mu.Lock()
	n := d.node.shutdowns
	d.node.mu.Unlock()
	if n != 1 {
		t.Errorf("%d Shutdown calls", n)
	}
}

// stop --wait returns once nothing answers on the socket any more.
func TestStopWait(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "aurad.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	node := &stoppingNode{}
	node.stop = func() { go srv.GracefulStop() }
	nodev1.RegisterNodeServiceServer(srv, node)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	r := runCtl(t, nil, nil, "--socket", sock, "stop", "--wait")
	mustOK(t, r)
	if r.out != "aurad at "+sock+" has stopped\n" {
		t.Errorf("stop --wait: %q", r.out)
	}
}

type stoppingNode struct {
	nodev1.UnimplementedNodeServiceServer
	stop func()
}

func (n *stoppingNode) Shutdown(context.Context, *nodev1.ShutdownRequest) (*nodev1.ShutdownResponse, error) {
	n.stop()
	return &nodev1.ShutdownResponse{}, nil
}
