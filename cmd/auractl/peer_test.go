package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	peerv1 "github.com/aura-p2p/aura/api/proto/aura/peer/v1"
	sessionv1 "github.com/aura-p2p/aura/api/proto/aura/session/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
)

// fakePeers answers pings and connects with err, or with one pong per ping.
type fakePeers struct {
	peerv1.UnimplementedPeerServiceServer
	mu    sync.Mutex
	err   error
	pings []*peerv1.PingRequest
}

func (f *fakePeers) Ping(req *peerv1.PingRequest, s grpc.ServerStreamingServer[peerv1.PingResponse]) error {
	f.mu.Lock()
	f.pings = append(f.pings, req)
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return err
	}
	for i := uint32(0); i < req.GetCount(); i++ {
		if err := s.Send(&peerv1.PingResponse{Seq: uint64(i + 1), Rtt: durationpb.New(1000), Context: "context/" + strings.Repeat("c", 64), Charged: 1}); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakePeers) Connect(context.Context, *peerv1.ConnectRequest) (*peerv1.ConnectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return &peerv1.ConnectResponse{Peer: &peerv1.Peer{DeviceId: strings.Repeat("d", 64)}}, nil
}

func startPeers(t *testing.T, f *fakePeers) string {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "aurad.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	peerv1.RegisterPeerServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return sock
}

// aurad's answer for a failure of the network, as internal/rpc sends it.
func peerFailureStatus(domainErr error) error {
	st, _ := rpc.ToStatus(rpc.PeerUnreachable(domainErr))
	return st.Err()
}

func TestPeerPingCountMustBePositive(t *testing.T) {
	f := &fakePeers{}
	sock := startPeers(t, f)
	for _, count := range []string{"0", "-1", "-c=0"} {
		args := []string{"--socket", sock, "peer", "ping", "d1", "--count", count}
		if strings.HasPrefix(count, "-c") {
			args = []string{"--socket", sock, "peer", "ping", "d1", count}
		}
		r := runCtl(t, nil, nil, args...)
		if r.code != ExitUsage || !strings.HasPrefix(r.err, "Error: ") || strings.Count(r.err, "\n") != 1 {
			t.Errorf("count %s: exit %d, stderr %q", count, r.code, r.err)
		}
	}
	f.mu.Lock()
	sent := len(f.pings)
	f.mu.Unlock()
	if sent != 0 {
		t.Fatalf("%d usage errors reached aurad", sent)
	}
	r := runCtl(t, nil, nil, "--socket", sock, "peer", "ping", "d1", "--count", "2", "--interval", "10ms")
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.code != ExitOK || strings.Count(r.out, "seq=") != 2 || len(f.pings) != 1 || f.pings[0].GetCount() != 2 {
		t.Fatalf("count 2: exit %d, out %q, requests %v", r.code, r.out, f.pings)
	}
}

// A peer that cannot be reached is not a daemon that is not running: aurad
// answered, so the exit code is 13, not 3, and the line is aurad's own.
func TestPeerUnreachableHasItsOwnExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		args []string
		code int
		line string
	}{
		{"ping: send failed", peerFailureStatus(fmt.Errorf("send to d1: failed to dial: no addresses: %w", core.ErrUnavailable)),
			[]string{"peer", "ping", "d1"}, ExitPeerUnreachable, "Error: unavailable: send to d1: failed to dial: no addresses"},
		{"ping: no pong", peerFailureStatus(fmt.Errorf("no pong from d1: %w", context.DeadlineExceeded)),
			[]string{"peer", "ping", "d1"}, ExitPeerUnreachable, "Error: deadline exceeded: no pong from d1"},
		{"connect: dial failed", peerFailureStatus(fmt.Errorf("connect d1: connection refused: %w", core.ErrUnavailable)),
			[]string{"peer", "connect", "d1"}, ExitPeerUnreachable, "Error: unavailable: connect d1: connection refused"},
		{"-o json too", peerFailureStatus(fmt.Errorf("send to d1: %w", core.ErrUnavailable)),
			[]string{"-o", "json", "peer", "ping", "d1"}, ExitPeerUnreachable, "Error: unavailable: send to d1"},
		// Unavailable without the reason is aurad's own state.
		{"aurad draining", status.Error(codes.Unavailable, "aurad is shutting down"),
			[]string{"peer", "ping", "d1"}, ExitUnavailable, "Error: unavailable: aurad is shutting down"},
		{"refused before sending", status.Error(codes.ResourceExhausted, "budget"),
			[]string{"peer", "ping", "d1"}, ExitResourceExhausted, "Error: resource exhausted: budget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := startPeers(t, &fakePeers{err: tt.err})
			r := runCtl(t, nil, nil, append([]string{"--socket", sock}, tt.args...)...)
			if r.code != tt.code || r.err != tt.line+"\n" || r.out != "" {
				t.Errorf("exit %d stderr %q stdout %q; want exit %d stderr %q", r.code, r.err, r.out, tt.code, tt.line)
			}
		})
	}
}

type fakeSessions struct {
	sessionv1.UnimplementedSessionServiceServer
	reason string
}

func (f *fakeSessions) StartSession(context.Context, *sessionv1.StartSessionRequest) (*sessionv1.StartSessionResponse, error) {
	return &sessionv1.StartSessionResponse{Session: &sessionv1.Session{
		Id: strings.Repeat("5", 32), Protocol: "Relay10", State: sessionv1.SessionState_SESSION_STATE_ABORTED,
		Reason: &sessionv1.AbortReason{Code: f.reason, By: "B"},
	}}, nil
}

// A session that aborted because a peer could not be reached exits as a ping
// to that peer would; any other abort stays 11.
func TestSessionAbortedByUnreachablePeer(t *testing.T) {
	for _, tt := range []struct {
		reason string
		code   int
	}{
		{"peer_unreachable", ExitPeerUnreachable},
		{"timeout", ExitAborted},
		{"violation", ExitAborted},
	} {
		t.Run(tt.reason, func(t *testing.T) {
			sock := filepath.Join(shortTempDir(t), "aurad.sock")
			lis, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			srv := grpc.NewServer()
			sessionv1.RegisterSessionServiceServer(srv, &fakeSessions{reason: tt.reason})
			go func() { _ = srv.Serve(lis) }()
			t.Cleanup(srv.Stop)
			r := runCtl(t, nil, nil, "--socket", sock, "session", "start", "Relay10", "--role", "A=self", "--wait")
			if r.code != tt.code || !strings.HasPrefix(r.err, "Error: aborted: session ") || !strings.Contains(r.err, tt.reason) {
				t.Errorf("exit %d, stderr %q; want exit %d", r.code, r.err, tt.code)
			}
		})
	}
}
