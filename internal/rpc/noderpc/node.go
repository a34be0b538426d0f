// Package noderpc adapts the daemon itself to aura.node.v1.NodeService.
package noderpc

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc"
)

// Identity is the static part of the status.
type Identity struct {
	Device    core.DeviceID
	PeerID    string
	Authority core.AuthorityID
	Version   string
	DataDir   string
	Socket    string
	StartedAt time.Time
}

// Network is the transport's part of the status.
type Network struct {
	ListenAddrs    []string
	Sent, Received uint64
	Dropped        map[string]uint64
	ConnectedPeers int
}

// Daemon is what the service needs from the running node.
type Daemon interface {
	Stats(ctx context.Context) (journal.Stats, error)
	Network() Network
	// RequestShutdown starts a graceful shutdown and returns at once.
	RequestShutdown()
}

// Service implements NodeService.
type Service struct {
	nodev1.UnsafeNodeServiceServer
	id    Identity
	d     Daemon
	clock core.Clock
}

// New returns the service.
func New(id Identity, d Daemon, clock core.Clock) *Service {
	return &Service{id: id, d: d, clock: clock}
}

// Register adds the service to s.
func (s *Service) Register(g *grpc.Server) { nodev1.RegisterNodeServiceServer(g, s) }

// Permissions of the service's methods.
func Permissions() rpc.Permissions {
	return rpc.Permissions{
		nodev1.NodeService_GetStatus_FullMethodName: rpc.Read,
		nodev1.NodeService_Shutdown_FullMethodName:  rpc.Admin,
	}
}

func (s *Service) GetStatus(ctx context.Context, _ *nodev1.GetStatusRequest) (*nodev1.GetStatusResponse, error) {
	st, err := s.d.Stats(ctx)
	if err != nil {
		return nil, err
	}
	net := s.d.Network()
	return &nodev1.GetStatusResponse{
		DeviceId:    s.id.Device.String(),
		AuthorityId: s.id.Authority.String(),
		PeerId:      s.id.PeerID,
		Version:     s.id.Version,
		StartedAt:   timestamppb.New(s.id.StartedAt),
		Uptime:      durationpb.New(s.clock.Now().Sub(s.id.StartedAt).Truncate(time.Millisecond)),
		DataDir:     s.id.DataDir,
		Socket:      s.id.Socket,
		Journal:     &nodev1.JournalStats{FactCount: st.Facts, NamespaceCount: st.Namespaces, LastSeq: st.LastSeq},
		ListenAddrs: net.ListenAddrs,
		Transport: &nodev1.TransportStats{
			Sent: net.Sent, Received: net.Received, Dropped: net.Dropped, ConnectedPeers: uint64(net.ConnectedPeers),
		},
	}, nil
}

func (s *Service) Shutdown(ctx context.Context, _ *nodev1.ShutdownRequest) (*nodev1.ShutdownResponse, error) {
	s.d.RequestShutdown()
	return &nodev1.ShutdownResponse{}, nil
}
