package peerrpc

import (
	"context"
	"fmt"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	peerv1 "github.com/aura-p2p/aura/api/proto/aura/peer/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/rpctest"
	"github.com/aura-p2p/aura/internal/transport"
)

// fakeNet is the transport and the pinger: it records what reaches it and
// fails every call with err.
type fakeNet struct {
	err      error
	calls    int
	pings    int
	device   core.DeviceID
	addr     ma.Multiaddr
	pingCtx  *core.ContextID
	connects int
}

func (f *fakeNet) AddPeer(_ context.Context, _ transport.Store, _ string) (transport.KnownPeer, error) {
	f.calls++
	return transport.KnownPeer{Device: core.DeviceID{2}}, f.err
}

// AwaitConnected: the fake's peers are connected at once.
func (f *fakeNet) AwaitConnected(context.Context, core.DeviceID) bool { return true }

func (f *fakeNet) RemovePeer(_ context.Context, _ transport.Store, d core.DeviceID) error {
	f.calls++
	f.device = d
	return f.err
}

func (f *fakeNet) Peers(context.Context, transport.Store) ([]transport.PeerInfo, error) {
	f.calls++
	return nil, f.err
}

func (f *fakeNet) Connect(_ context.Context, d core.DeviceID, addr ma.Multiaddr) error {
	f.calls++
	f.connects++
	f.device, f.addr = d, addr
	return f.err
}

func (f *fakeNet) PingClaiming(_ context.Context, d core.DeviceID, c *core.ContextID, _ transport.Claim) (transport.PingResult, error) {
	f.calls++
	f.pings++
	f.device, f.pingCtx = d, c
	return transport.PingResult{Seq: uint64(f.pings), Charged: 1}, f.err
}

// pingStream collects what Ping sends.
type pingStream struct {
	peerv1.PeerService_PingServer
	sent []*peerv1.PingResponse
}

func (*pingStream) Context() context.Context { return context.Background() }
func (s *pingStream) Send(r *peerv1.PingResponse) error {
	s.sent = append(s.sent, r)
	return nil
}

var (
	dev     = core.DeviceID{2}
	devAddr = func() string {
		pid, _ := transport.PeerID(dev)
		return "/ip4/127.0.0.1/tcp/4001/p2p/" + pid.String()
	}()
)

// Every method: input refused before the network sees it, and the
// network's errors, each with the code the caller gets.
func TestValidationAndCodes(t *testing.T) {
	ctx := context.Background()
	ping := func(req *peerv1.PingRequest) func(s *Service) error {
		return func(s *Service) error { return s.Ping(req, &pingStream{}) }
	}
	tests := []struct {
		name      string
		call      func(s *Service) error
		domainErr error
		code      codes.Code
		reaches   bool
	}{
		{"add: unreachable", func(s *Service) error {
			_, err := s.AddPeer(ctx, &peerv1.AddPeerRequest{Addr: devAddr})
			return err
		}, fmt.Errorf("dial: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"add: not a multiaddr", func(s *Service) error {
			_, err := s.AddPeer(ctx, &peerv1.AddPeerRequest{Addr: "x"})
			return err
		}, fmt.Errorf("addr: %w", core.ErrInvalidArgument), codes.InvalidArgument, true},
		{"remove: no peer", func(s *Service) error {
			_, err := s.RemovePeer(ctx, &peerv1.RemovePeerRequest{})
			return err
		}, nil, codes.InvalidArgument, false},
		{"remove: garbage peer", func(s *Service) error {
			_, err := s.RemovePeer(ctx, &peerv1.RemovePeerRequest{Peer: "nobody"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"remove: multiaddr without /p2p", func(s *Service) error {
			_, err := s.RemovePeer(ctx, &peerv1.RemovePeerRequest{Peer: "/ip4/1.2.3.4/tcp/1"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"remove: unknown peer", func(s *Service) error {
			_, err := s.RemovePeer(ctx, &peerv1.RemovePeerRequest{Peer: dev.String()})
			return err
		}, fmt.Errorf("peer: %w", core.ErrNotFound), codes.NotFound, true},
		{"list: store unavailable", func(s *Service) error {
			_, err := s.ListPeers(ctx, &peerv1.ListPeersRequest{})
			return err
		}, fmt.Errorf("closed: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"connect: garbage peer", func(s *Service) error {
			_, err := s.Connect(ctx, &peerv1.ConnectRequest{Peer: "nobody"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"connect: backed off", func(s *Service) error {
			_, err := s.Connect(ctx, &peerv1.ConnectRequest{Peer: devAddr})
			return err
		}, fmt.Errorf("backed off: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"ping: no peer", ping(&peerv1.PingRequest{}), nil, codes.InvalidArgument, false},
		{"ping: garbage context", ping(&peerv1.PingRequest{Peer: dev.String(), Context: "context/zz"}), nil, codes.InvalidArgument, false},
		{"ping: too many", ping(&peerv1.PingRequest{Peer: dev.String(), Count: maxPings + 1}), nil, codes.InvalidArgument, false},
		{"ping: interval too short", ping(&peerv1.PingRequest{Peer: dev.String(), Count: 2, Interval: durationpb.New(minInterval - 1)}), nil, codes.InvalidArgument, false},
		{"ping: over budget", ping(&peerv1.PingRequest{Peer: dev.String()}), fmt.Errorf("budget: %w", core.ErrResourceExhausted), codes.ResourceExhausted, true},
		{"ping: ok", ping(&peerv1.PingRequest{Peer: dev.String()}), nil, codes.OK, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &fakeNet{err: tc.domainErr}
			err := tc.call(New(n, n, nil, core.SystemClock{}))
			rpctest.CheckOutcome(t, err, tc.code, n.calls, tc.reaches, tc.domainErr)
		})
	}
}

// A ping to a /p2p/ address connects there first, then pings that device
// count times in the context asked for, sending one response per ping.
func TestPingConnectsThenPingsCountTimes(t *testing.T) {
	c := core.ContextID{5}
	n := &fakeNet{}
	st := &pingStream{}
	req := &peerv1.PingRequest{Peer: devAddr, Context: "context/" + c.String(), Count: 2, Interval: durationpb.New(minInterval)}
	if err := New(n, n, nil, core.SystemClock{}).Ping(req, st); err != nil {
		t.Fatal(err)
	}
	if n.connects != 1 || n.addr == nil || n.device != dev {
		t.Fatalf("connects %d to %v %s, want one to %s", n.connects, n.addr, n.device, devAddr)
	}
	if n.pings != 2 || n.pingCtx == nil || *n.pingCtx != c {
		t.Fatalf("pings %d in %v, want 2 in %s", n.pings, n.pingCtx, c)
	}
	if len(st.sent) != 2 || st.sent[0].GetSeq() != 1 || st.sent[1].GetSeq() != 2 || st.sent[1].GetCharged() != 1 {
		t.Fatalf("sent %v", st.sent)
	}
}

// What the network failed carries the peer reason, so auractl can tell it from
// aurad itself being unavailable; the daemon's own failures and refusals do not.
func TestPeerFailuresCarryTheReason(t *testing.T) {
	ctx := context.Background()
	connect := func(s *Service) error {
		_, err := s.Connect(ctx, &peerv1.ConnectRequest{Peer: devAddr})
		return err
	}
	ping := func(peer string) func(s *Service) error {
		return func(s *Service) error { return s.Ping(&peerv1.PingRequest{Peer: peer}, &pingStream{}) }
	}
	list := func(s *Service) error {
		_, err := s.ListPeers(ctx, &peerv1.ListPeersRequest{})
		return err
	}
	tests := []struct {
		name      string
		call      func(s *Service) error
		domainErr error
		reason    string
	}{
		{"connect: dial failed", connect, fmt.Errorf("connect: %w", core.ErrUnavailable), rpc.ReasonPeerUnreachable},
		{"connect: no address known", connect, fmt.Errorf("no address: %w", core.ErrNotFound), ""},
		{"ping: send failed", ping(dev.String()), fmt.Errorf("send: %w", core.ErrUnavailable), rpc.ReasonPeerUnreachable},
		{"ping: dial of a /p2p/ address failed", ping(devAddr), fmt.Errorf("connect: %w", core.ErrUnavailable), rpc.ReasonPeerUnreachable},
		{"ping: no pong", ping(dev.String()), fmt.Errorf("no pong: %w", context.DeadlineExceeded), rpc.ReasonPeerUnreachable},
		{"ping: over budget", ping(dev.String()), fmt.Errorf("budget: %w", core.ErrResourceExhausted), ""},
		{"list: store closed", list, fmt.Errorf("closed: %w", core.ErrUnavailable), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &fakeNet{err: tc.domainErr}
			st, _ := rpc.ToStatus(tc.call(New(n, n, nil, core.SystemClock{})))
			if got := rpc.Reason(st.Err()); got != tc.reason {
				t.Fatalf("reason %q, want %q (%v)", got, tc.reason, st)
			}
		})
	}
}
