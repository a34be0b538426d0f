package rpc_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
)

// scriptedHealth answers as the requested service name says, so one
// registered service gives every way a call can end.
type scriptedHealth struct {
	healthpb.UnimplementedHealthServer
}

func (scriptedHealth) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	switch req.Service {
	case "missing":
		return nil, fmt.Errorf("service %q: %w", req.Service, core.ErrNotFound)
	case "panic":
		panic("scripted panic")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (scriptedHealth) Watch(req *healthpb.HealthCheckRequest, s healthpb.Health_WatchServer) error {
	if req.Service == "missing" {
		return fmt.Errorf("service %q: %w", req.Service, core.ErrNotFound)
	}
	if err := s.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}); err != nil {
		return err
	}
	<-s.Context().Done()
	return s.Context().Err()
}

type observed struct {
	method string
	code   codes.Code
	took   time.Duration
}

// Every call reaches Observe once, with the code its client got, whether it
// ended in the handler, in the error mapping, in a panic, in the permission
// check or by the client hanging up.
func TestObserveSeesEveryCall(t *testing.T) {
	calls := make(chan observed, 16)
	dir, err := os.MkdirTemp("", "rpc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	perms := rpc.Permissions{"/grpc.health.v1.Health/Check": rpc.Read, "/grpc.health.v1.Health/Watch": rpc.Read}
	srv := grpc.NewServer(rpc.ServerOptions(rpc.Options{
		Logger: zaptest.NewLogger(t), Gate: rpc.NewGate(), Permissions: perms,
		Observe: func(method string, code codes.Code, took time.Duration) { calls <- observed{method, code, took} },
	})...)
	healthpb.RegisterHealthServer(srv, scriptedHealth{})
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
	client := healthpb.NewHealthClient(cc)

	const check, watch, list = "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch", "/grpc.health.v1.Health/List"
	unary := func(service string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
			return err
		}
	}
	cases := []struct {
		name   string
		call   func(ctx context.Context) error
		method string
		code   codes.Code
	}{
		{"unary ok", unary("ok"), check, codes.OK},
		{"unary error mapped from its sentinel", unary("missing"), check, codes.NotFound},
		{"unary panic", unary("panic"), check, codes.Internal},
		{"method without permission entry", func(ctx context.Context) error {
			_, err := client.List(ctx, &healthpb.HealthListRequest{})
			return err
		}, list, codes.PermissionDenied},
		{"stream error", func(ctx context.Context) error {
			s, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "missing"})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, watch, codes.NotFound},
		{"stream the client hangs up", func(ctx context.Context) error {
			ctx, cancel := context.WithCancel(ctx)
			s, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "ok"})
			if err != nil {
				cancel()
				return err
			}
			if _, err := s.Recv(); err != nil {
				cancel()
				return err
			}
			cancel()
			_, err = s.Recv()
			return err
		}, watch, codes.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(context.Background())
			if got := status.Code(err); got != tc.code {
				t.Fatalf("client got %v (%v), want %v", got, err, tc.code)
			}
			// The server reports before it answers, so the report is there;
			// a hung-up stream only ends once the server noticed: wait.
			var o observed
			if tc.code == codes.Canceled {
				o = <-calls
			} else {
				select {
				case o = <-calls:
				default:
					t.Fatal("the call was not observed")
				}
			}
			if o.method != tc.method || o.code != tc.code || o.took < 0 {
				t.Fatalf("observed %+v, want %s %v", o, tc.method, tc.code)
			}
			select {
			case extra := <-calls:
				t.Fatalf("observed a second call %+v", extra)
			default:
			}
		})
	}
}
