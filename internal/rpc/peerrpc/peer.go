// Package peerrpc adapts the transport's peer book and ping to
// aura.peer.v1.PeerService.
package peerrpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	peerv1 "github.com/aura-p2p/aura/api/proto/aura/peer/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/transport"
)

// addConnectWait is how long AddPeer waits for the added peer's connection.
const addConnectWait = 2 * time.Second

// Transport is what the service needs from the network edge.
type Transport interface {
	AddPeer(ctx context.Context, s transport.Store, addr string) (transport.KnownPeer, error)
	AwaitConnected(ctx context.Context, d core.DeviceID) bool
	RemovePeer(ctx context.Context, s transport.Store, d core.DeviceID) error
	Peers(ctx context.Context, s transport.Store) ([]transport.PeerInfo, error)
	Connect(ctx context.Context, d core.DeviceID, addr ma.Multiaddr) error
}

// Pinger sends pings.
type Pinger interface {
	PingClaiming(ctx context.Context, d core.DeviceID, c *core.ContextID, claim transport.Claim) (transport.PingResult, error)
}

// Service implements PeerService.
type Service struct {
	peerv1.UnsafePeerServiceServer
	t     Transport
	p     Pinger
	store transport.Store
	clock core.Clock
}

// New returns the service.
func New(t Transport, p Pinger, s transport.Store, clock core.Clock) *Service {
	return &Service{t: t, p: p, store: s, clock: clock}
}

// Register adds the service to g.
func (s *Service) Register(g *grpc.Server) { peerv1.RegisterPeerServiceServer(g, s) }

// Permissions of the service's methods.
func Permissions() rpc.Permissions {
	return rpc.Permissions{
		peerv1.PeerService_AddPeer_FullMethodName:    rpc.Write,
		peerv1.PeerService_RemovePeer_FullMethodName: rpc.Write,
		peerv1.PeerService_ListPeers_FullMethodName:  rpc.Read,
		peerv1.PeerService_Connect_FullMethodName:    rpc.Write,
		peerv1.PeerService_Ping_FullMethodName:       rpc.Write,
	}
}

// target parses a device id, a peer id or a /p2p/ multiaddr.
func target(s string) (core.DeviceID, ma.Multiaddr, error) {
	if s == "" {
		return core.DeviceID{}, nil, fmt.Errorf("no peer given: %w", core.ErrInvalidArgument)
	}
	if strings.HasPrefix(s, "/") {
		return transport.ParsePeerAddr(s)
	}
	d, err := core.ParseDevice(s)
	return d, nil, err
}

func (s *Service) find(ctx context.Context, d core.DeviceID) (*peerv1.Peer, error) {
	ps, err := s.t.Peers(ctx, s.store)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.Device == d {
			return toProto(p), nil
		}
	}
	pid, _ := transport.PeerID(d)
	return &peerv1.Peer{DeviceId: d.String(), PeerId: pid.String()}, nil
}

func (s *Service) AddPeer(ctx context.Context, req *peerv1.AddPeerRequest) (*peerv1.AddPeerResponse, error) {
	kp, err := s.t.AddPeer(ctx, s.store, req.GetAddr())
	if err != nil {
		return nil, err
	}
	// A reachable peer is connected when the command returns, so it can
	// answer this device at once; one that is down holds the add up for
	// addConnectWait at most, and its dial goes on behind.
	wctx, cancel := context.WithTimeout(ctx, addConnectWait)
	s.t.AwaitConnected(wctx, kp.Device)
	cancel()
	p, err := s.find(ctx, kp.Device)
	return &peerv1.AddPeerResponse{Peer: p}, err
}

func (s *Service) RemovePeer(ctx context.Context, req *peerv1.RemovePeerRequest) (*peerv1.RemovePeerResponse, error) {
	d, _, err := target(req.GetPeer())
	if err != nil {
		return nil, err
	}
	return &peerv1.RemovePeerResponse{}, s.t.RemovePeer(ctx, s.store, d)
}

func (s *Service) ListPeers(ctx context.Context, _ *peerv1.ListPeersRequest) (*peerv1.ListPeersResponse, error) {
	ps, err := s.t.Peers(ctx, s.store)
	if err != nil {
		return nil, err
	}
	resp := &peerv1.ListPeersResponse{}
	for _, p := range ps {
		resp.Peers = append(resp.Peers, toProto(p))
	}
	return resp, nil
}

func (s *Service) Connect(ctx context.Context, req *peerv1.ConnectRequest) (*peerv1.ConnectResponse, error) {
	d, addr, err := target(req.GetPeer())
	if err != nil {
		return nil, err
	}
	if err := s.t.Connect(ctx, d, addr); err != nil {
		return nil, peerFailure(ctx, err)
	}
	p, err := s.find(ctx, d)
	return &peerv1.ConnectResponse{Peer: p}, err
}

// Limits of a ping run.
const (
	maxPings    = 10000
	minInterval = 10 * time.Millisecond
)

func (s *Service) Ping(req *peerv1.PingRequest, stream peerv1.PeerService_PingServer) error {
	ctx := stream.Context()
	d, addr, err := target(req.GetPeer())
	if err != nil {
		return err
	}
	var cid *core.ContextID
	if req.GetContext() != "" {
		c, err := core.ParseContextRef(req.GetContext())
		if err != nil {
			return err
		}
		cid = &c
	}
	count := max(req.GetCount(), 1)
	if count > maxPings {
		return fmt.Errorf("count %d, at most %d: %w", count, maxPings, core.ErrInvalidArgument)
	}
	interval := time.Second
	if req.GetInterval() != nil {
		interval = req.GetInterval().AsDuration()
		if interval < minInterval {
			return fmt.Errorf("interval %s, at least %s: %w", interval, minInterval, core.ErrInvalidArgument)
		}
	}
	if addr != nil {
		if err := s.t.Connect(ctx, d, addr); err != nil {
			return peerFailure(ctx, err)
		}
	}
	for i := uint32(0); i < count; i++ {
		if i > 0 {
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := s.p.PingClaiming(pctx, d, cid, transport.Claim{Capability: req.GetCapability(), Token: req.GetToken()})
		cancel()
		if err != nil {
			return peerFailure(ctx, err)
		}
		if err := stream.Send(&peerv1.PingResponse{Seq: r.Seq, Rtt: durationpb.New(r.RTT), Context: "context/" + r.Context.String(), Charged: r.Charged}); err != nil {
			return err
		}
	}
	return nil
}

// peerFailure marks the errors that the peer or the network caused, so that
// clients can tell them from aurad itself being unavailable: the transport
// reports a failed dial or send as Unavailable, and a ping that got no answer
// while the caller still waits as DeadlineExceeded.
func peerFailure(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, core.ErrUnavailable):
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
	default:
		return err
	}
	return rpc.PeerUnreachable(err)
}

func toProto(p transport.PeerInfo) *peerv1.Peer {
	out := &peerv1.Peer{
		DeviceId: p.Device.String(), PeerId: p.PeerID.String(), Known: p.Known, Connected: p.Connected,
		Addrs: p.Addrs, BackedOff: p.BackedOff,
	}
	if p.Latency > 0 {
		out.Latency = durationpb.New(p.Latency)
	}
	return out
}
