// Package noderpc adapts the daemon itself to aura.node.v1.NodeService.
package noderpc

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
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
	// SentBytes and ReceivedBytes are envelope frame bytes.
	SentBytes, ReceivedBytes uint64
	Dropped                  map[string]uint64
	ConnectedPeers           int
}

// Daemon is what the service needs from the running node.
type Daemon interface {
	Stats(ctx context.Context) (journal.Stats, error)
	Network() Network
	// RequestShutdown starts a graceful shutdown and returns at once.
	RequestShutdown()
	// Backup opens a consistent snapshot of the journal, hands its
	// description to begin, then writes the snapshot to w; it returns the
	// bytes written. An error from begin or w ends it with that error.
	Backup(ctx context.Context, w io.Writer, begin func(journal.SnapshotInfo) error) (int64, error)
	// SetLogLevel sets the log level ("" keeps it) and returns the previous.
	SetLogLevel(level string) (previous string, err error)
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
		// A backup holds every fact, budget and peer of the device.
		nodev1.NodeService_Backup_FullMethodName: rpc.Admin,
		// Debug logs show what the device does, in detail.
		nodev1.NodeService_SetLogLevel_FullMethodName: rpc.Admin,
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
		Journal: &nodev1.JournalStats{
			FactCount: st.Facts, NamespaceCount: st.Namespaces, LastSeq: st.LastSeq,
			Orphans: st.Orphans, OrphanBytes: st.OrphanBytes, OrphansEvicted: st.OrphansEvicted,
		},
		ListenAddrs: net.ListenAddrs,
		Transport: &nodev1.TransportStats{
			Sent: net.Sent, Received: net.Received, Dropped: net.Dropped, ConnectedPeers: uint64(net.ConnectedPeers),
			BytesSent: net.SentBytes, BytesReceived: net.ReceivedBytes,
		},
	}, nil
}

func (s *Service) SetLogLevel(_ context.Context, req *nodev1.SetLogLevelRequest) (*nodev1.SetLogLevelResponse, error) {
	prev, err := s.d.SetLogLevel(req.GetLevel())
	if err != nil {
		return nil, err
	}
	level := req.GetLevel()
	if level == "" {
		level = prev
	}
	return &nodev1.SetLogLevelResponse{Previous: prev, Level: level}, nil
}

func (s *Service) Shutdown(ctx context.Context, _ *nodev1.ShutdownRequest) (*nodev1.ShutdownResponse, error) {
	s.d.RequestShutdown()
	return &nodev1.ShutdownResponse{}, nil
}

// BackupChunkSize bounds the snapshot bytes in one BackupResponse: large
// enough that framing costs nothing, small enough to stay far below gRPC's
// message limit.
const BackupChunkSize = 256 << 10

func (s *Service) Backup(_ *nodev1.BackupRequest, stream nodev1.NodeService_BackupServer) error {
	ctx := stream.Context()
	cw := &chunkWriter{send: stream.Send, sum: sha256.New()}
	size := int64(-1)
	n, err := s.d.Backup(ctx, cw, func(info journal.SnapshotInfo) error {
		size = info.Size
		return stream.Send(&nodev1.BackupResponse{Part: &nodev1.BackupResponse_Header{Header: &nodev1.BackupHeader{
			Size:          uint64(info.Size),
			SchemaVersion: info.SchemaVersion,
			FactCount:     info.Facts,
			LastSeq:       info.LastSeq,
			AuthorityId:   s.id.Authority.String(),
			DeviceId:      s.id.Device.String(),
			TakenAt:       timestamppb.New(s.clock.Now()),
		}}})
	})
	if err == nil {
		err = cw.flush()
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			// The client left or the daemon is draining; whatever the
			// copy failed with is a consequence.
			return cerr
		}
		return err
	}
	if size < 0 || n != size || cw.n != size {
		return fmt.Errorf("backup sent %d bytes of a %d-byte snapshot: %w", cw.n, size, core.ErrInternal)
	}
	return stream.Send(&nodev1.BackupResponse{Part: &nodev1.BackupResponse_Trailer{Trailer: &nodev1.BackupTrailer{
		Sha256: cw.sum.Sum(nil),
	}}})
}

// chunkWriter cuts what is written into BackupChunkSize messages and hashes
// it on the way.
type chunkWriter struct {
	send func(*nodev1.BackupResponse) error
	buf  []byte
	sum  hash.Hash
	n    int64
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if c.buf == nil {
			// A fresh buffer per message: gRPC may still hold the last
			// one after Send returns.
			c.buf = make([]byte, 0, BackupChunkSize)
		}
		k := min(len(p), BackupChunkSize-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		written += k
		if len(c.buf) == BackupChunkSize {
			if err := c.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	c.sum.Write(c.buf)
	c.n += int64(len(c.buf))
	chunk := c.buf
	c.buf = nil
	return c.send(&nodev1.BackupResponse{Part: &nodev1.BackupResponse_Chunk{Chunk: chunk}})
}
