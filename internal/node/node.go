// Package node runs aurad: it loads the configuration, owns the lifecycle and is
// the one place that wires the domain packages to each other and to the API.
// Everything a component needs is passed to it here; nothing is global.
package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/buildinfo"
	"github.com/aura-p2p/aura/internal/choreo/protocols"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/crdt"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/budgetrpc"
	"github.com/aura-p2p/aura/internal/rpc/crdtrpc"
	"github.com/aura-p2p/aura/internal/rpc/journalrpc"
	"github.com/aura-p2p/aura/internal/rpc/noderpc"
	"github.com/aura-p2p/aura/internal/rpc/peerrpc"
	"github.com/aura-p2p/aura/internal/rpc/sessionrpc"
	"github.com/aura-p2p/aura/internal/session"
	"github.com/aura-p2p/aura/internal/transport"
)

// Deps are what a node takes from its surroundings. Zero values mean the real
// thing: the wall clock, crypto/rand, systemd's notify socket.
type Deps struct {
	Logger *zap.Logger
	Clock  core.Clock
	Rand   io.Reader
	// Notify reports lifecycle states ("READY=1", "STOPPING=1") to a supervisor.
	Notify func(state string)
}

func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Clock == nil {
		d.Clock = core.SystemClock{}
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Notify == nil {
		d.Notify = func(state string) { _, _ = daemon.SdNotify(false, state) }
	}
	return d
}

// Node is a running daemon.
type Node struct {
	cfg   Config
	log   *zap.Logger
	clock core.Clock

	lock      *dataDirLock
	keys      *Keys
	journal   *journal.Journal
	auth      core.AuthorityID
	ledger    *budget.Ledger
	transport *transport.Transport
	sessions  *session.Runtime

	gate    *rpc.Gate
	grpc    *grpc.Server
	health  *health.Server
	lis     []net.Listener
	tcpAddr net.Addr
	notify  func(string)

	// bg runs the node's periodic work; stopBG ends it before the journal closes.
	bg     sync.WaitGroup
	stopBG context.CancelFunc

	shutdownOnce sync.Once
	shutdownReq  chan struct{}
	serveErr     chan error
	stopOnce     sync.Once
}

// Start brings a node up and returns once its control socket accepts calls.
// On error everything it opened is closed again.
func Start(ctx context.Context, cfg Config, d Deps) (_ *Node, err error) {
	d = d.withDefaults()
	n := &Node{
		cfg: cfg, log: d.Logger, clock: d.Clock, notify: d.Notify,
		gate: rpc.NewGate(), shutdownReq: make(chan struct{}), serveErr: make(chan error, 2),
	}
	defer func() {
		if err != nil {
			n.closeResources()
		}
	}()
	startedAt := d.Clock.Now()

	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if n.lock, err = lockDataDir(cfg.DataDir, cfg.Socket); err != nil {
		return nil, err
	}
	if n.lock.infoErr != nil {
		// The lock holds; only the pid note for a second daemon's message is missing.
		n.log.Warn("could not note pid in the lock file (disk full?)", zap.Error(n.lock.infoErr))
	}
	// Only a data dir holding nothing is founded on a plain start; one that
	// lost its journal or its key is refused, never silently re-founded.
	st, err := inspectDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := refuseDamagedDataDir(cfg.DataDir, st); err != nil {
		return nil, err
	}
	keys, auth, j, founded, err := openIdentity(ctx, cfg, d, n.log, st.empty())
	if err != nil {
		return nil, err
	}
	n.keys, n.journal, n.auth = keys, j, auth
	signer := journal.NewKeySigner(keys.Device)
	if founded {
		n.log.Info("founded one-device authority", zap.Stringer("authority", auth))
	}
	defaultNS := core.AuthorityNamespace(auth)
	objects := crdt.NewStore(n.journal, signer)

	policy := budget.DefaultPolicy()
	policy.Flow = budget.ClassLimits{Link: cfg.Budget.LinkLimit, Contact: cfg.Budget.ContactLimit, Group: cfg.Budget.GroupLimit}
	n.ledger, err = budget.Open(ctx, n.journal, budget.Config{
		Policy: policy, EpochDuration: time.Duration(cfg.Budget.Epoch), AuditNamespace: defaultNS,
	}, signer, d.Clock, n.log.Named("budget"))
	if err != nil {
		return nil, fmt.Errorf("budget ledger: %w", err)
	}
	authz := transport.NewMemberAuthorizer(keys.DeviceID(), n.journal)
	n.transport, err = transport.Start(ctx, keys.Device, transport.Config{
		ListenAddrs: cfg.P2P.Listen, MDNS: cfg.P2P.MDNS, Relay: cfg.P2P.Relay, HolePunching: cfg.P2P.HolePunching,
		ConnLow: cfg.P2P.ConnLow, ConnHigh: cfg.P2P.ConnHigh,
	}, transport.Options{Logger: n.log.Named("transport"), Clock: d.Clock, Authorizer: authz, Charger: n.ledger.Charger()})
	if err != nil {
		return nil, err
	}
	pinger := transport.NewPinger(n.transport, authz)
	// Sessions of the embedded protocols; the relay handler serves those
	// marked for it, so they can be run from auractl.
	embedded, err := protocols.All()
	if err != nil {
		return nil, fmt.Errorf("embedded protocols: %w", err)
	}
	n.sessions, err = session.New(ctx, session.Options{
		Transport: n.transport, Journal: n.journal, Signer: signer, Namespace: defaultNS, Authorizer: authz,
		Protocols: embedded, Clock: d.Clock, Rand: d.Rand, Logger: n.log.Named("choreo"),
	})
	if err != nil {
		return nil, fmt.Errorf("session runtime: %w", err)
	}
	n.sessions.RegisterRelay()
	bgCtx, stopBG := context.WithCancel(context.Background())
	n.stopBG = stopBG
	n.bg.Add(1)
	// Chains close every protocol epoch, whatever the budget period.
	go n.sweepBudgets(bgCtx, budget.EpochLength)
	if known, err := n.transport.LoadPeers(ctx, n.journal); err != nil {
		return nil, fmt.Errorf("known peers: %w", err)
	} else if len(known) > 0 {
		n.log.Info("known peers loaded", zap.Int("peers", len(known)))
	}

	peerID, err := peerIDOf(keys)
	if err != nil {
		return nil, err
	}
	token, err := n.readToken()
	if err != nil {
		return nil, err
	}
	services := []interface{ Register(*grpc.Server) }{
		noderpc.New(noderpc.Identity{
			Device: keys.DeviceID(), PeerID: peerID.String(), Authority: auth, Version: buildinfo.Version(),
			DataDir: cfg.DataDir, Socket: cfg.Socket, StartedAt: startedAt,
		}, n, d.Clock),
		journalrpc.New(n.journal, signer, defaultNS),
		crdtrpc.New(objects, defaultNS),
		peerrpc.New(n.transport, pinger, n.journal, d.Clock),
		budgetrpc.New(n.ledger, keys.DeviceID()),
		sessionrpc.New(n.sessions, keys.DeviceID()),
	}
	perms, err := rpc.Merge(rpc.StandardPermissions(), noderpc.Permissions(), journalrpc.Permissions(), crdtrpc.Permissions(),
		peerrpc.Permissions(), budgetrpc.Permissions(), sessionrpc.Permissions())
	if err != nil {
		return nil, err
	}
	n.grpc = grpc.NewServer(rpc.ServerOptions(rpc.Options{
		Logger: n.log.Named("rpc"), Gate: n.gate, Permissions: perms, Tokens: token,
	})...)
	for _, s := range services {
		s.Register(n.grpc)
	}
	n.health = health.NewServer()
	healthpb.RegisterHealthServer(n.grpc, n.health)
	reflection.Register(n.grpc)
	if err := rpc.CheckPermissions(n.grpc, perms); err != nil {
		return nil, err
	}

	if err := n.listen(); err != nil {
		return nil, err
	}
	for _, l := range n.lis {
		go func() { n.serveErr <- n.grpc.Serve(l) }()
	}
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	n.bg.Add(1)
	go n.watchJournal(bgCtx)
	if err := writeReady(cfg.DataDir, ReadyInfo{
		PID: os.Getpid(), Socket: cfg.Socket, DeviceID: keys.DeviceID().String(), PeerID: peerID.String(),
		ListenAddrs: n.transport.Addrs(),
	}); err != nil {
		// Reads must still be served on a full disk; ready.json is a
		// convenience for scripts, and sd_notify still reports readiness.
		n.log.Warn("could not write ready file", zap.Error(err))
	}
	n.notify(daemon.SdNotifyReady)
	n.log.Info("aurad ready",
		zap.String("version", buildinfo.Version()),
		zap.Stringer("device", keys.DeviceID()),
		zap.Stringer("authority", auth),
		zap.String("socket", cfg.Socket),
		zap.Strings("p2p", n.transport.Addrs()),
		zap.String("data_dir", cfg.DataDir))
	return n, nil
}

func peerIDOf(keys *Keys) (peer.ID, error) {
	pub, err := p2pcrypto.UnmarshalEd25519PublicKey(keys.DeviceID().PublicKey())
	if err != nil {
		return "", err
	}
	return peer.IDFromPublicKey(pub)
}

// readToken reads the TCP listener's tokens (see tokens.go for the file
// format); they are read at start only.
func (n *Node) readToken() ([]rpc.Token, error) {
	if n.cfg.Control.TCPListen == "" {
		return nil, nil
	}
	return ReadTokenFile(n.cfg.Control.TokenFile)
}

// listen opens the control socket (replacing a stale one) and, if configured,
// the TLS listener.
func (n *Node) listen() error {
	sock := n.cfg.Socket
	if _, err := os.Lstat(sock); err == nil {
		if c, err := net.DialTimeout("unix", sock, 200*time.Millisecond); err == nil {
			c.Close()
			return fmt.Errorf("control socket %s is served by another process (--socket shared by two data dirs?): %w", sock, ErrAlreadyRunning)
		}
		n.log.Info("replacing stale control socket", zap.String("socket", sock))
		if err := os.Remove(sock); err != nil {
			return fmt.Errorf("remove stale socket: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		return err
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	n.lis = append(n.lis, l)
	if err := os.Chmod(sock, os.FileMode(n.cfg.SocketMode)); err != nil {
		return fmt.Errorf("control socket mode: %w", err)
	}
	if n.cfg.Control.TCPListen == "" {
		return nil
	}
	if err := checkSecretFile(n.cfg.Control.TLSKeyFile); err != nil {
		return fmt.Errorf("control TLS key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(n.cfg.Control.TLSCertFile, n.cfg.Control.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("control TLS: %w: %w", err, core.ErrInvalidArgument)
	}
	tl, err := net.Listen("tcp", n.cfg.Control.TCPListen)
	if err != nil {
		return fmt.Errorf("control TCP listener: %w", err)
	}
	n.tcpAddr = tl.Addr()
	n.lis = append(n.lis, tls.NewListener(tl, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		// gRPC clients insist on ALPN h2.
		NextProtos: []string{"h2"},
	}))
	n.log.Info("remote control listening", zap.Stringer("addr", tl.Addr()))
	return nil
}

// TCPAddr is the bound remote-control address, or nil.
func (n *Node) TCPAddr() net.Addr { return n.tcpAddr }

// Stats implements noderpc.Daemon.
func (n *Node) Stats(ctx context.Context) (journal.Stats, error) { return n.journal.Stats(ctx) }

// Network implements noderpc.Daemon.
func (n *Node) Network() noderpc.Network {
	st := n.transport.Stats()
	return noderpc.Network{
		ListenAddrs: n.transport.Addrs(), Sent: st.Sent, Received: st.Received, Dropped: st.Dropped,
		ConnectedPeers: st.ConnectedPeers,
	}
}

// RequestShutdown starts a graceful shutdown (the Shutdown RPC).
func (n *Node) RequestShutdown() {
	n.shutdownOnce.Do(func() { close(n.shutdownReq) })
}

// ShutdownRequested is closed when a client asked the node to stop.
func (n *Node) ShutdownRequested() <-chan struct{} { return n.shutdownReq }

// Stop drains and closes the node: in-flight calls get until the shutdown
// timeout, then the journal flushes and bbolt closes last.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		n.notify(daemon.SdNotifyStopping)
		n.log.Info("aurad stopping")
		n.health.Shutdown()
		n.gate.Drain()
		done := make(chan struct{})
		go func() {
			n.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(time.Duration(n.cfg.ShutdownTimeout)):
			n.log.Warn("graceful stop timed out; cutting off remaining calls")
			n.grpc.Stop()
			<-done
		}
		n.closeResources()
		n.log.Info("aurad stopped")
	})
}

// closeResources closes what Start opened, in reverse order.
func (n *Node) closeResources() {
	if n.grpc != nil {
		n.grpc.Stop()
	}
	for _, l := range n.lis {
		_ = l.Close()
	}
	removeReady(n.cfg.DataDir)
	if n.stopBG != nil {
		n.stopBG()
		n.bg.Wait()
	}
	// Sessions end (and tell their peers) while the transport still runs.
	if n.sessions != nil {
		_ = n.sessions.Close()
	}
	if n.transport != nil {
		if err := n.transport.Shutdown(); err != nil {
			n.log.Warn("closing libp2p host", zap.Error(err))
		}
	}
	if n.journal != nil {
		if err := n.journal.Close(); err != nil {
			n.log.Warn("closing journal", zap.Error(err))
		}
	}
	n.lock.release()
}

// Run starts a node and serves until ctx ends or a client asks it to stop.
func Run(ctx context.Context, cfg Config, d Deps) error {
	n, err := Start(ctx, cfg, d)
	if err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case <-n.shutdownReq:
	case serveErr = <-n.serveErr:
	}
	n.Stop()
	if serveErr != nil && !errors.Is(serveErr, grpc.ErrServerStopped) {
		return fmt.Errorf("serving: %w", serveErr)
	}
	return nil
}

// mergeValidators joins the validator sets of the subsystems. Two
// subsystems claiming one fact type is a wiring bug that would otherwise
// silently keep whichever came last, so it fails the start.
func mergeValidators(sets ...map[string]journal.Validator) (map[string]journal.Validator, error) {
	out := map[string]journal.Validator{}
	for _, s := range sets {
		for t, v := range s {
			if _, dup := out[t]; dup {
				return nil, fmt.Errorf("two subsystems register a validator for fact type %q: %w", t, core.ErrInternal)
			}
			out[t] = v
		}
	}
	return out, nil
}

// watchJournal reports a journal that met damage as NOT_SERVING, so a
// supervisor or load balancer sees it; reads of intact data go on.
func (n *Node) watchJournal(ctx context.Context) {
	defer n.bg.Done()
	select {
	case <-ctx.Done():
	case <-n.journal.Failed():
		n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
}

// sweepBudgets closes quiet keys' epochs once an epoch, so their audit
// summaries are written even when no further traffic rotates them.
func (n *Node) sweepBudgets(ctx context.Context, epoch time.Duration) {
	defer n.bg.Done()
	t := time.NewTicker(epoch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.ledger.Sweep(ctx); err != nil && ctx.Err() == nil {
				n.log.Warn("budget sweep", zap.Error(err))
			}
		}
	}
}
