package journalrpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc"
)

// durableCount counts the facts of successful commits. The journal tells its
// observer after a commit is synced and before it answers anyone, so an
// acknowledgement must never run ahead of it.
type durableCount struct {
	mu    sync.Mutex
	facts int
}

func (d *durableCount) ObserveCommit(_, facts int, _ time.Duration, err error) {
	if err == nil {
		d.mu.Lock()
		d.facts += facts
		d.mu.Unlock()
	}
}

func (d *durableCount) get() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.facts
}

// capReducer counts app.cap/v1 facts and refuses the one past capLimit: a
// refusal only the journal's writer can make, after the facts before it
// were handed over.
type capReducer struct{}

const capLimit = 5

func (capReducer) Name() string                            { return "test.cap" }
func (capReducer) Handles(t string) bool                   { return t == "app.cap/v1" }
func (capReducer) Key(*journal.SignedFact) ([]byte, error) { return []byte("n"), nil }
func (capReducer) Commutative() bool                       { return true }
func (capReducer) Apply(s []byte, _ *journal.SignedFact) ([]byte, error) {
	var n uint64
	if len(s) == 8 {
		n = binary.BigEndian.Uint64(s)
	}
	if n >= capLimit {
		return nil, fmt.Errorf("cap of %d reached: %w", capLimit, core.ErrFailedPrecondition)
	}
	return binary.BigEndian.AppendUint64(nil, n+1), nil
}

// streamEdge is the service over a real journal, behind aurad's interceptor
// chain on a unix socket.
type streamEdge struct {
	j       *journal.Journal
	ns      core.Namespace
	durable *durableCount
	client  journalv1.JournalServiceClient
	// ended hears the code of every AppendFacts call once its handler returned.
	ended chan codes.Code
}

func startStreamEdge(t *testing.T) *streamEdge {
	t.Helper()
	dir, err := os.MkdirTemp("", "jrpc") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &streamEdge{durable: &durableCount{}, ended: make(chan codes.Code, 16)}
	e.j, err = journal.Open(context.Background(), journal.Options{
		Path:     filepath.Join(dir, "journal.db"),
		Reducers: []journal.Reducer{capReducer{}},
		Validators: map[string]journal.Validator{"app.checked/v1": func(f *journal.SignedFact) error {
			if string(f.Payload) == "bad" {
				return fmt.Errorf("payload bad: %w", core.ErrInvalidArgument)
			}
			return nil
		}},
		Observer: e.durable,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.j.Close() })
	signer := testSigner()
	e.ns = foundNamespace(t, e.j, signer)

	srv := grpc.NewServer(rpc.ServerOptions(rpc.Options{
		Logger: zaptest.NewLogger(t), Gate: rpc.NewGate(), Permissions: Permissions(),
		Observe: func(method string, code codes.Code, _ time.Duration) {
			if method == journalv1.JournalService_AppendFacts_FullMethodName {
				e.ended <- code
			}
		},
	})...)
	New(e.j, signer, e.ns).Register(srv)
	sock := filepath.Join(dir, "s.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	e.client = journalv1.NewJournalServiceClient(cc)
	return e
}

// foundNamespace founds signer's authority namespace, as aurad does at first start.
func foundNamespace(t *testing.T, j *journal.Journal, signer journal.Signer) core.Namespace {
	t.Helper()
	g := journal.Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Members: []journal.Member{{Device: signer.DeviceID()}}}
	payload, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ns := journal.NamespaceOf(core.NamespaceAuthority, payload)
	if _, _, err := j.AppendLocal(context.Background(), signer, journal.Draft{Namespace: ns, TypeID: journal.TypeGenesis, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func (e *streamEdge) stored(t *testing.T, typ string) []journal.StoredFact {
	t.Helper()
	facts, _, err := e.j.List(context.Background(), journal.ListQuery{Namespace: &e.ns, TypeID: typ, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return facts
}

func numbered(typ string, i int) *journalv1.AppendFactsRequest {
	return &journalv1.AppendFactsRequest{TypeId: typ, Payload: []byte(strconv.Itoa(i))}
}

// Every fact is acknowledged in the order sent, with its index, only once
// its commit is durable, and is stored as sent.
func TestAppendFactsAcksInOrderOnceDurable(t *testing.T) {
	e := startStreamEdge(t)
	ctx := context.Background()
	base := e.durable.get()
	s, err := e.client.AppendFacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	// Sent all at once, so that many are in flight.
	for i := range n {
		if err := s.Send(numbered("app.x/v1", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var prev *journalv1.AppendFactsResponse
	for i := range n {
		ack, err := s.Recv()
		if err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
		if durable := e.durable.get() - base; durable < i+1 {
			t.Fatalf("fact %d acknowledged with %d facts durable", i, durable)
		}
		if ack.GetIndex() != uint64(i) || ack.GetNamespace() != e.ns.String() {
			t.Fatalf("ack %d: %v", i, ack)
		}
		if prev != nil && (ack.GetSeq() != prev.GetSeq()+1 || ack.GetLamport() <= prev.GetLamport()) {
			t.Fatalf("ack %d out of order: %v after %v", i, ack, prev)
		}
		prev = ack
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last ack: %v, want EOF", err)
	}
	facts := e.stored(t, "app.x/v1")
	if len(facts) != n {
		t.Fatalf("%d facts stored, want %d", len(facts), n)
	}
	for i, f := range facts {
		if string(f.Payload) != strconv.Itoa(i) {
			t.Fatalf("fact %d stored with payload %q", i, f.Payload)
		}
	}
}

// A fact that fails ends the stream with its own code and its index, after
// the facts before it are acknowledged; none after it is stored, although
// they were sent before the failure was known.
func TestAppendFactsStopsAtFirstFailure(t *testing.T) {
	const n, bad = 10, capLimit
	tests := []struct {
		name string
		typ  string
		// fact bad, or nil to leave it like the others
		at   *journalv1.AppendFactsRequest
		code codes.Code
	}{
		{"garbage namespace", "app.x/v1", &journalv1.AppendFactsRequest{TypeId: "app.x/v1", Namespace: "group/1"}, codes.InvalidArgument},
		{"genesis type", "app.x/v1", &journalv1.AppendFactsRequest{TypeId: journal.TypeGenesis}, codes.InvalidArgument},
		{"validator refuses", "app.checked/v1", &journalv1.AppendFactsRequest{TypeId: "app.checked/v1", Payload: []byte("bad")}, codes.InvalidArgument},
		{"too large", "app.x/v1", &journalv1.AppendFactsRequest{TypeId: "app.x/v1", Payload: make([]byte, journal.MaxPayloadSize+1)}, codes.InvalidArgument},
		{"unknown namespace", "app.x/v1", &journalv1.AppendFactsRequest{TypeId: "app.x/v1", Namespace: core.ContextNamespace(core.ContextID{9}).String()}, codes.NotFound},
		{"refused by the writer", "app.cap/v1", nil, codes.FailedPrecondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startStreamEdge(t)
			s, err := e.client.AppendFacts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				req := numbered(tc.typ, i)
				if i == bad && tc.at != nil {
					req = tc.at
				}
				if err := s.Send(req); err != nil {
					// The server may end the stream before all are sent.
					break
				}
			}
			_ = s.CloseSend()
			for i := range bad {
				ack, err := s.Recv()
				if err != nil || ack.GetIndex() != uint64(i) {
					t.Fatalf("ack %d: %v %v", i, ack, err)
				}
			}
			ack, err := s.Recv()
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.HasPrefix(st.Message(), fmt.Sprintf("fact %d: ", bad)) {
				t.Fatalf("after %d acks: %v %v, want %v naming fact %d", bad, ack, err, tc.code, bad)
			}
			if got := len(e.stored(t, tc.typ)); got != bad {
				t.Fatalf("%d facts stored, want the %d before the failure", got, bad)
			}
		})
	}
}

// A client that goes away mid-stream ends the call; what was stored is a
// prefix of what it sent and holds everything acknowledged.
func TestAppendFactsClientCancel(t *testing.T) {
	e := startStreamEdge(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := e.client.AppendFacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan int, 1)
	go func() {
		i := 0
		for ; s.Send(numbered("app.x/v1", i)) == nil; i++ {
		}
		sent <- i
	}()
	const acked = 100
	for i := range acked {
		if _, err := s.Recv(); err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
	}
	cancel()
	if code := <-e.ended; code != codes.Canceled {
		t.Fatalf("call ended with %v, want Canceled", code)
	}
	n := <-sent
	facts := e.stored(t, "app.x/v1")
	if len(facts) < acked || len(facts) > n {
		t.Fatalf("%d facts stored; %d acknowledged, %d sent", len(facts), acked, n)
	}
	for i, f := range facts {
		if string(f.Payload) != strconv.Itoa(i) {
			t.Fatalf("stored fact %d has payload %q: not a prefix of what was sent", i, f.Payload)
		}
	}
}
