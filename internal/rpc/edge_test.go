package rpc_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	crdtv1 "github.com/aura-p2p/aura/api/proto/aura/crdt/v1"
	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	peerv1 "github.com/aura-p2p/aura/api/proto/aura/peer/v1"
	sessionv1 "github.com/aura-p2p/aura/api/proto/aura/session/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/crdtrpc"
	"github.com/aura-p2p/aura/internal/rpc/journalrpc"
	"github.com/aura-p2p/aura/internal/rpc/peerrpc"
	"github.com/aura-p2p/aura/internal/rpc/sessionrpc"
)

// edge serves the real interceptor chain and adapters on a unix socket. The
// adapters have no domain behind them: every call here must be refused before
// it would reach one.
type edge struct {
	socket string
	health *health.Server
}

func startEdge(t *testing.T, o rpc.Options) *edge {
	t.Helper()
	dir, err := os.MkdirTemp("", "rpc") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &edge{socket: filepath.Join(dir, "s.sock"), health: health.NewServer()}
	perms, err := rpc.Merge(rpc.StandardPermissions(), journalrpc.Permissions(), crdtrpc.Permissions(),
		peerrpc.Permissions(), sessionrpc.Permissions())
	if err != nil {
		t.Fatal(err)
	}
	o.Logger, o.Gate, o.Permissions = zaptest.NewLogger(t), rpc.NewGate(), perms
	srv := grpc.NewServer(rpc.ServerOptions(o)...)
	journalrpc.New(nil, nil, core.Namespace{}).Register(srv)
	crdtrpc.New(nil, core.Namespace{}).Register(srv)
	peerrpc.New(nil, nil, nil, nil).Register(srv)
	sessionrpc.New(nil, core.DeviceID{}).Register(srv)
	healthpb.RegisterHealthServer(srv, e.health)
	lis, err := net.Listen("unix", e.socket)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return e
}

func (e *edge) dial(t *testing.T) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("unix://"+e.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestLongInputIsNotEchoed(t *testing.T) {
	e := startEdge(t, rpc.Options{})
	cc := e.dial(t)
	ctx := context.Background()
	long := "x" + strings.Repeat("é", 50_000) // 100,001 bytes
	shown := `"x` + strings.Repeat("é", 31) + `"…(100001 bytes)`
	tests := []struct {
		name string
		call func() error
	}{
		{"namespace", func() error {
			_, err := journalv1.NewJournalServiceClient(cc).ListFacts(ctx, &journalv1.ListFactsRequest{Namespace: long})
			return err
		}},
		{"namespace of a stream", func() error {
			s, err := journalv1.NewJournalServiceClient(cc).WatchFacts(ctx, &journalv1.WatchFactsRequest{Namespace: long})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}},
		{"peer", func() error {
			_, err := peerv1.NewPeerServiceClient(cc).RemovePeer(ctx, &peerv1.RemovePeerRequest{Peer: long})
			return err
		}},
		{"multiaddr", func() error {
			_, err := peerv1.NewPeerServiceClient(cc).Connect(ctx, &peerv1.ConnectRequest{Peer: "/" + long})
			return err
		}},
		{"role and device in a nested message", func() error {
			_, err := sessionv1.NewSessionServiceClient(cc).StartSession(ctx, &sessionv1.StartSessionRequest{
				Protocol: "ping", Roles: []*sessionv1.RoleAssignment{{Role: long, DeviceId: long}},
			})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument || len(st.Message()) > 400 {
				t.Fatalf("got %v with a %d-byte message: %.400q", st.Code(), len(st.Message()), st.Message())
			}
			if tc.name != "multiaddr" && !strings.Contains(st.Message(), shown) {
				t.Errorf("message %q does not show the input as %s", st.Message(), shown)
			}
			if !strings.Contains(st.Message(), "(100001 bytes)") && !strings.Contains(st.Message(), "(100002 bytes)") {
				t.Errorf("message %q does not say how long the input was", st.Message())
			}
		})
	}
}

func TestNamesRefuseHiddenCharacters(t *testing.T) {
	e := startEdge(t, rpc.Options{})
	cc := e.dial(t)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"object name", func() error {
			_, err := crdtv1.NewCrdtServiceClient(cc).Update(ctx, &crdtv1.UpdateRequest{
				Name: "report\u202Etxt.exe", Op: &crdtv1.UpdateRequest_CounterAdd{CounterAdd: &crdtv1.CounterAdd{Delta: 1}},
			})
			return err
		}, "object name has U+202E (a format character, Cf) at byte 6"},
		{"protocol", func() error {
			_, err := sessionv1.NewSessionServiceClient(cc).StartSession(ctx, &sessionv1.StartSessionRequest{Protocol: "pi\u200Bng"})
			return err
		}, "protocol name has U+200B (a format character, Cf) at byte 2"},
		{"role", func() error {
			_, err := sessionv1.NewSessionServiceClient(cc).StartSession(ctx, &sessionv1.StartSessionRequest{
				Protocol: "ping", Roles: []*sessionv1.RoleAssignment{{Role: "\u2067a", DeviceId: "self"}},
			})
			return err
		}, "role name has U+2067 (a format character, Cf) at byte 0"},
		{"choice", func() error {
			_, err := sessionv1.NewSessionServiceClient(cc).StartSession(ctx, &sessionv1.StartSessionRequest{
				Protocol: "ping", Choices: []string{"yes\u2028"},
			})
			return err
		}, "choice has U+2028 (a line separator, Zl) at byte 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := status.Convert(tc.call())
			if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.want) {
				t.Fatalf("got %v %q, want InvalidArgument %q", st.Code(), st.Message(), tc.want)
			}
		})
	}
}

// openWatch opens a health watch and waits for its first message, so the
// server has counted it; it returns the stream's cancel, or the refusal.
func openWatch(t *testing.T, cc *grpc.ClientConn) (context.CancelFunc, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = s.Recv()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return cancel, nil
}

func TestStreamLimits(t *testing.T) {
	e := startEdge(t, rpc.Options{MaxStreamsPerConn: 2, MaxStreams: 3})
	a, b := e.dial(t), e.dial(t)

	var open []context.CancelFunc
	for range 2 {
		cancel, err := openWatch(t, a)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, cancel)
	}
	_, err := openWatch(t, a)
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "limit 2 per connection") {
		t.Fatalf("third stream on one connection: %v", err)
	}
	// Unary calls are not streams: the connection still works.
	if _, err := healthpb.NewHealthClient(a).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("unary call beside full streams: %v", err)
	}

	if _, err := openWatch(t, b); err != nil {
		t.Fatalf("first stream on a second connection: %v", err)
	}
	_, err = openWatch(t, b)
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "limit 3 across all connections") {
		t.Fatalf("fourth stream in all: %v", err)
	}

	// Closing a stream frees its slot once the server has seen it end.
	open[0]()
	for {
		_, err := openWatch(t, b)
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("after a stream closed: %v", err)
		}
	}
}

func TestRefusedStreamIsNotCounted(t *testing.T) {
	e := startEdge(t, rpc.Options{MaxStreamsPerConn: 1, MaxStreams: 1})
	cc := e.dial(t)
	// A watch the adapter refuses ends at once and gives its slot back.
	for range 3 {
		s, err := journalv1.NewJournalServiceClient(cc).WatchFacts(context.Background(), &journalv1.WatchFactsRequest{Namespace: "bad"})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("bad watch: %v", err)
		}
	}
	// The slot is released before the refusal is sent, so no waiting here.
	if _, err := openWatch(t, cc); err != nil {
		t.Fatalf("watch after refused ones: %v", err)
	}
}
