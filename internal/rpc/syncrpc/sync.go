// Package syncrpc adapts the anti-entropy engine to
// aura.sync.v1.SyncService: the operator's view of reconciliations and a
// way to run one now.
package syncrpc

import (
	"context"
	"errors"
	"strings"
	gosync "sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	syncv1 "github.com/aura-p2p/aura/api/proto/aura/sync/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
	auraSync "github.com/aura-p2p/aura/internal/sync"
)

// Engine is what the service needs from the sync engine.
type Engine interface {
	// Status lists, per peer and namespace, the last reconciliation and
	// totals, sorted by peer then namespace.
	Status() []auraSync.PeerStatus
	// Overview is Status plus a never-synced row for every namespace
	// shared with a peer: what prefixes resolve against.
	Overview(ctx context.Context) ([]auraSync.PeerStatus, error)
	// SyncNow reconciles with peer (zero: every device sharing a namespace
	// with this one) over ns (zero: every namespace shared with that peer),
	// calling progress as sessions advance, one call at a time and none
	// after it returns; it returns the final Progress of each session.
	SyncNow(ctx context.Context, peer core.DeviceID, ns core.Namespace, progress func(auraSync.Progress)) ([]auraSync.Progress, error)
}

// Service implements SyncService.
type Service struct {
	syncv1.UnsafeSyncServiceServer
	e Engine
}

// New returns the service.
func New(e Engine) *Service { return &Service{e: e} }

// Register adds the service to g.
func (s *Service) Register(g *grpc.Server) { syncv1.RegisterSyncServiceServer(g, s) }

// Permissions of the service's methods. Syncing now sends messages and
// spends budget, like a ping.
func Permissions() rpc.Permissions {
	return rpc.Permissions{
		syncv1.SyncService_GetSyncStatus_FullMethodName: rpc.Read,
		syncv1.SyncService_SyncNow_FullMethodName:       rpc.Write,
	}
}

func (s *Service) GetSyncStatus(ctx context.Context, req *syncv1.GetSyncStatusRequest) (*syncv1.GetSyncStatusResponse, error) {
	f, err := parseFilter(req.GetPeer(), req.GetNamespace())
	if err != nil {
		return nil, err
	}
	list, err := s.e.Overview(ctx)
	if err != nil {
		return nil, err
	}
	if err := f.resolve(list); err != nil {
		return nil, err
	}
	resp := &syncv1.GetSyncStatusResponse{}
	for _, p := range list {
		if f.match(p) {
			resp.Statuses = append(resp.Statuses, statusToProto(p))
		}
	}
	return resp, nil
}

func (s *Service) SyncNow(req *syncv1.SyncNowRequest, stream grpc.ServerStreamingServer[syncv1.SyncProgress]) error {
	f, err := parseFilter(req.GetPeer(), req.GetNamespace())
	if err != nil {
		return err
	}
	if f.needsStatus() {
		list, err := s.e.Overview(stream.Context())
		if err != nil {
			return err
		}
		if err := f.resolve(list); err != nil {
			return err
		}
	}
	// A client that goes away, or a stream that cannot take a message,
	// stops the sessions: nobody would see their progress.
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	fw := &forwarder{send: stream.Send, cancel: cancel, last: map[sessionKey]auraSync.Progress{}}
	finals, err := s.e.SyncNow(ctx, f.peer, f.ns, fw.forward)
	// The last report of a session should have come through progress;
	// one that did not is sent now, so every session's end reaches the
	// client exactly once.
	for _, p := range finals {
		fw.forwardFinal(p)
	}
	if serr := fw.failure(); serr != nil {
		return serr
	}
	return peerFailure(stream.Context(), err)
}

// sessionKey names one session of a SyncNow.
type sessionKey struct {
	peer core.DeviceID
	ns   core.Namespace
}

// forwarder sends the engine's progress reports down the stream in the
// order they come. After a failed send it sends nothing more.
type forwarder struct {
	send   func(*syncv1.SyncProgress) error
	cancel context.CancelFunc

	// mu orders the engine's calls, which may come from its own
	// goroutines, with the handler's reads after SyncNow returns.
	mu   gosync.Mutex
	err  error
	last map[sessionKey]auraSync.Progress
}

func (f *forwarder) forward(p auraSync.Progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sendLocked(p)
}

func (f *forwarder) forwardFinal(p auraSync.Progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if last, ok := f.last[sessionKey{p.Peer, p.Namespace}]; ok && last == p {
		return
	}
	f.sendLocked(p)
}

func (f *forwarder) sendLocked(p auraSync.Progress) {
	if f.err != nil {
		return
	}
	if err := f.send(progressToProto(p)); err != nil {
		f.err = err
		f.cancel()
		return
	}
	f.last[sessionKey{p.Peer, p.Namespace}] = p
}

func (f *forwarder) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// peerFailure marks the errors that the peer or the network caused, so
// that clients can tell them from aurad itself being unavailable: the
// engine reports a peer it cannot reach as Unavailable, and a peer that
// stopped answering while the caller still waits as DeadlineExceeded.
func peerFailure(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, core.ErrUnavailable):
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
	default:
		return err
	}
	return rpc.PeerUnreachable(err)
}

// filter is a request's peer and namespace. Each is empty (any), given in
// full, or a prefix to resolve against the peers and namespaces the
// engine's status lists: a person pastes the short ids a table shows.
type filter struct {
	peer       core.DeviceID
	peerPrefix string

	ns       core.Namespace
	nsKind   core.NamespaceKind
	nsPrefix string
}

// parseFilter refuses what cannot name a peer or a namespace, before the
// engine is asked anything.
func parseFilter(peer, ns string) (filter, error) {
	var f filter
	if peer != "" {
		d, err := core.ParseDevice(peer)
		switch perr := rpc.CheckPrefix("peer", peer); {
		case err == nil:
			f.peer = d
		case perr == nil:
			f.peerPrefix = peer
		case isHex(peer):
			// Meant as a prefix: say what a prefix needs.
			return filter{}, perr
		default:
			return filter{}, err
		}
	}
	if ns != "" {
		n, err := core.ParseNamespace(ns)
		if err == nil {
			f.ns = n
			return f, nil
		}
		kind, id, _ := strings.Cut(ns, "/")
		switch kind {
		case "authority":
			f.nsKind = core.NamespaceAuthority
		case "context":
			f.nsKind = core.NamespaceContext
		default:
			return filter{}, err
		}
		if err := rpc.CheckPrefix("namespace", id); err != nil {
			return filter{}, err
		}
		f.nsPrefix = id
	}
	return f, nil
}

func isHex(s string) bool {
	return strings.Trim(strings.ToLower(s), "0123456789abcdef") == ""
}

func (f filter) needsStatus() bool { return f.peerPrefix != "" || f.nsPrefix != "" }

// resolve turns prefixes into the one peer and namespace of list they
// name: none is NotFound, several are InvalidArgument naming them.
func (f *filter) resolve(list []auraSync.PeerStatus) error {
	if f.peerPrefix != "" {
		var ids []string
		var devs []core.DeviceID
		seen := map[core.DeviceID]bool{}
		for _, p := range list {
			if !seen[p.Peer] {
				seen[p.Peer] = true
				ids = append(ids, p.Peer.String())
				devs = append(devs, p.Peer)
			}
		}
		i, err := rpc.ResolvePrefix("peer", f.peerPrefix, ids)
		if err != nil {
			return err
		}
		f.peer, f.peerPrefix = devs[i], ""
	}
	if f.nsPrefix != "" {
		var ids []string
		var nss []core.Namespace
		seen := map[core.Namespace]bool{}
		for _, p := range list {
			if p.Namespace.Kind == f.nsKind && !seen[p.Namespace] {
				seen[p.Namespace] = true
				ids = append(ids, p.Namespace.ID.String())
				nss = append(nss, p.Namespace)
			}
		}
		i, err := rpc.ResolvePrefix("namespace", f.nsPrefix, ids)
		if err != nil {
			return err
		}
		f.ns, f.nsPrefix = nss[i], ""
	}
	return nil
}

func (f filter) match(p auraSync.PeerStatus) bool {
	return (f.peer == core.DeviceID{} || p.Peer == f.peer) && (f.ns == core.Namespace{} || p.Namespace == f.ns)
}

var modes = map[auraSync.Mode]syncv1.SyncMode{
	auraSync.ModeEqual:  syncv1.SyncMode_SYNC_MODE_EQUAL,
	auraSync.ModeSketch: syncv1.SyncMode_SYNC_MODE_SKETCH,
	auraSync.ModeRange:  syncv1.SyncMode_SYNC_MODE_RANGE,
	auraSync.ModeFull:   syncv1.SyncMode_SYNC_MODE_FULL,
}

var phases = map[auraSync.Phase]syncv1.SyncPhase{
	auraSync.PhaseReconciling:  syncv1.SyncPhase_SYNC_PHASE_RECONCILING,
	auraSync.PhaseTransferring: syncv1.SyncPhase_SYNC_PHASE_TRANSFERRING,
	auraSync.PhaseDone:         syncv1.SyncPhase_SYNC_PHASE_DONE,
	auraSync.PhaseFailed:       syncv1.SyncPhase_SYNC_PHASE_FAILED,
}

var roles = map[auraSync.Role]syncv1.SyncRole{
	auraSync.RoleInitiator: syncv1.SyncRole_SYNC_ROLE_INITIATOR,
	auraSync.RoleResponder: syncv1.SyncRole_SYNC_ROLE_RESPONDER,
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func contextRef(c core.ContextID) string {
	if c == (core.ContextID{}) {
		return ""
	}
	return "context/" + c.String()
}

func statusToProto(p auraSync.PeerStatus) *syncv1.PeerSyncStatus {
	return &syncv1.PeerSyncStatus{
		PeerDeviceId: p.Peer.String(), Namespace: p.Namespace.String(), Context: contextRef(p.Context),
		LastStarted: timestamp(p.LastStarted), LastFinished: timestamp(p.LastFinished),
		LastMode: modes[p.LastMode], LastRole: roles[p.LastRole], LastRounds: uint32(p.LastRounds), LastError: p.LastError,
		Sessions: p.Sessions, Failures: p.Failures, FactsIn: p.FactsIn, FactsOut: p.FactsOut,
		BytesIn: p.BytesIn, BytesOut: p.BytesOut, Refused: p.Refused,
	}
}

func progressToProto(p auraSync.Progress) *syncv1.SyncProgress {
	return &syncv1.SyncProgress{
		PeerDeviceId: p.Peer.String(), Namespace: p.Namespace.String(), Context: contextRef(p.Context),
		Phase: phases[p.Phase], Mode: modes[p.Mode], Rounds: uint32(p.Rounds),
		FactsIn: p.FactsIn, FactsOut: p.FactsOut, FactsExpected: p.FactsExpected,
		BytesIn: p.BytesIn, BytesOut: p.BytesOut, Error: p.Err,
	}
}
