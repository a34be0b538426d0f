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
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/aura-p2p/aura/internal/account"
	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/buildinfo"
	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/crdt"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/metrics"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/noderpc"
	"github.com/aura-p2p/aura/internal/session"
	auraSync "github.com/aura-p2p/aura/internal/sync"
	"github.com/aura-p2p/aura/internal/transport"
	"github.com/aura-p2p/aura/internal/wot"
)

// Deps are what a node takes from its surroundings. Zero values mean the real
// thing: the wall clock, crypto/rand, systemd's notify socket.
type Deps struct {
	Logger *zap.Logger
	Clock  core.Clock
	Rand   io.Reader
	// Notify reports lifecycle states ("READY=1", "STOPPING=1") to a supervisor.
	Notify func(state string)
	// LogLevel, when set, is the logger's level, which SetLogLevel changes
	// at run time (auractl log-level).
	LogLevel *zap.AtomicLevel
	// Host, when set, builds the libp2p host from the device key instead of
	// the TCP/QUIC host of the [p2p] config: the multi-node harness puts its
	// nodes on an in-memory network it can partition and slow down.
	Host func(key p2pcrypto.PrivKey) (host.Host, error)
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
	deps  Deps

	// Set before the components start.
	lock      *dataDirLock
	mayFound  bool
	registry  registry
	startedAt time.Time

	// Set by the components as they start (see components.go).
	keys       *Keys
	journal    *journal.Journal
	auth       core.AuthorityID
	signer     journal.Signer
	defaultNS  core.Namespace
	objects    *crdt.Store
	ledger     *budget.Ledger
	authz      *transport.MemberAuthorizer
	transport  *transport.Transport
	pinger     *transport.Pinger
	sessions   *session.Runtime
	ceremonies *ceremony.Service
	account    *account.Service
	// accountLive is account once it started, for the transport's and
	// the announcer's member lookups, which may run before it has.
	accountLive atomic.Pointer[account.Service]
	trust       *wot.Service
	announcer   *auraSync.Announcer
	syncer      *auraSync.Syncer
	peerID      peer.ID

	// started are the components that started, in start order.
	started []component

	// Prometheus metrics, when [metrics] listen is set.
	metrics     *metrics.Metrics
	stopMetrics context.CancelFunc
	metricsAddr net.Addr

	gate    *rpc.Gate
	grpc    *grpc.Server
	health  *health.Server
	lis     []net.Listener
	tcpAddr net.Addr
	notify  func(string)

	// bg runs the components' loops; stopBG ends them before any component stops.
	bg     sync.WaitGroup
	stopBG context.CancelFunc

	shutdownOnce sync.Once
	shutdownReq  chan struct{}
	// restart is closed when the node must start again as another
	// account's device (it joined one); Run does, as would a harness.
	restartOnce sync.Once
	restart     chan struct{}
	serveErr    chan error
	stopOnce    sync.Once
}

// Start brings a node up and returns once its control socket accepts calls.
// On error everything it opened is closed again.
func Start(ctx context.Context, cfg Config, d Deps) (*Node, error) {
	return start(ctx, cfg, d, daemonComponents())
}

// start runs a node of the given components.
func start(ctx context.Context, cfg Config, d Deps, comps []component) (_ *Node, err error) {
	d = d.withDefaults()
	n := &Node{
		cfg: cfg, log: d.Logger, clock: d.Clock, deps: d, notify: d.Notify,
		gate: rpc.NewGate(), shutdownReq: make(chan struct{}), restart: make(chan struct{}), serveErr: make(chan error, 2),
	}
	defer func() {
		if err != nil {
			n.closeResources()
		}
	}()
	n.startedAt = d.Clock.Now()
	// Wiring bugs fail before the data dir is touched.
	if n.registry, err = collect(comps); err != nil {
		return nil, err
	}

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
	n.mayFound = st.empty()
	if cfg.Metrics.Listen != "" {
		if n.metrics, err = metrics.New(metrics.Options{Logger: n.log.Named("metrics"), Version: buildinfo.Version(), Sources: n.metricSources()}); err != nil {
			return nil, err
		}
	}
	if err := n.startComponents(ctx, comps); err != nil {
		return nil, err
	}

	token, err := n.readToken()
	if err != nil {
		return nil, err
	}
	svcs, err := gatherServices(n.started, n)
	if err != nil {
		return nil, err
	}
	n.grpc = grpc.NewServer(rpc.ServerOptions(rpc.Options{
		Logger: n.log.Named("rpc"), Gate: n.gate, Permissions: svcs.perms, Tokens: token, Observe: n.observeRPC(),
	})...)
	for _, s := range svcs.services {
		s.Register(n.grpc)
	}
	n.health = health.NewServer()
	healthpb.RegisterHealthServer(n.grpc, n.health)
	reflection.Register(n.grpc)
	if err := rpc.CheckPermissions(n.grpc, svcs.perms); err != nil {
		return nil, err
	}

	if err := n.listen(); err != nil {
		return nil, err
	}
	if n.metrics != nil {
		mctx, stop := context.WithCancel(context.Background())
		n.stopMetrics = stop
		if n.metricsAddr, err = n.metrics.Serve(mctx, cfg.Metrics.Listen, cfg.Metrics.Pprof); err != nil {
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
	}
	for _, l := range n.lis {
		go func() { n.serveErr <- n.grpc.Serve(l) }()
	}
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	n.runLoops()
	if err := writeReady(cfg.DataDir, ReadyInfo{
		PID: os.Getpid(), Socket: cfg.Socket, DeviceID: n.keys.DeviceID().String(), PeerID: n.peerID.String(),
		ListenAddrs: n.transport.Addrs(), MetricsAddr: addrString(n.metricsAddr),
	}); err != nil {
		// Reads must still be served on a full disk; ready.json is a
		// convenience for scripts, and sd_notify still reports readiness.
		n.log.Warn("could not write ready file", zap.Error(err))
	}
	n.notify(daemon.SdNotifyReady)
	n.log.Info("aurad ready",
		zap.String("version", buildinfo.Version()),
		zap.Stringer("device", n.keys.DeviceID()),
		zap.Stringer("authority", n.auth),
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

// observeRPC is the gRPC observer of the metrics, if they are on.
func (n *Node) observeRPC() func(string, codes.Code, time.Duration) {
	if n.metrics == nil {
		return nil
	}
	return n.metrics.ObserveRPC
}

// commitObserver is the journal's commit observer, if metrics are on.
func (n *Node) commitObserver() journal.CommitObserver {
	if n.metrics == nil {
		return nil
	}
	return n.metrics
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// startOnHost runs the transport on the host Deps.Host builds from the
// device key.
func (n *Node) startOnHost(o transport.Options) (*transport.Transport, error) {
	priv, err := p2pcrypto.UnmarshalEd25519PrivateKey(n.keys.Device)
	if err != nil {
		return nil, err
	}
	h, err := n.deps.Host(priv)
	if err != nil {
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	t, err := transport.StartOn(h, o)
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	return t, nil
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

// Transport is the node's transport, for the test harness's hostile
// scenarios (test/cluster): the daemon itself hands it to no one.
func (n *Node) Transport() *transport.Transport { return n.transport }

// TCPAddr is the bound remote-control address, or nil.
func (n *Node) TCPAddr() net.Addr { return n.tcpAddr }

// Stats implements noderpc.Daemon.
func (n *Node) Stats(ctx context.Context) (journal.Stats, error) { return n.journal.Stats(ctx) }

// Network implements noderpc.Daemon.
func (n *Node) Network() noderpc.Network {
	st := n.transport.Stats()
	return noderpc.Network{
		ListenAddrs: n.transport.Addrs(), Sent: st.Sent, Received: st.Received, Dropped: st.Dropped,
		SentBytes: st.SentBytes, ReceivedBytes: st.ReceivedBytes,
		ConnectedPeers: st.ConnectedPeers,
	}
}

// ErrFixedLogLevel: the node was given no adjustable level (Deps.LogLevel).
var ErrFixedLogLevel = fmt.Errorf("this aurad's log level cannot change while it runs: %w", core.ErrFailedPrecondition)

// SetLogLevel changes the log level ("" only reads it) and returns the
// previous one.
func (n *Node) SetLogLevel(level string) (string, error) {
	al := n.deps.LogLevel
	if al == nil {
		return "", ErrFixedLogLevel
	}
	prev := al.Level().String()
	if level == "" {
		return prev, nil
	}
	l, err := zapcore.ParseLevel(level)
	if err != nil || l < zapcore.DebugLevel || l > zapcore.ErrorLevel {
		return "", fmt.Errorf("log level %q: want debug, info, warn or error: %w", level, core.ErrInvalidArgument)
	}
	al.SetLevel(l)
	n.log.Info("log level changed", zap.String("from", prev), zap.String("to", l.String()))
	return prev, nil
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
	if n.stopMetrics != nil {
		// Scrapes end before the components they read stop.
		n.stopMetrics()
		n.metrics.Wait()
	}
	if n.stopBG != nil {
		n.stopBG()
		n.bg.Wait()
	}
	// Reverse start order: sessions end (and tell their peers) while the
	// transport still runs; the journal, and bbolt with it, closes last.
	n.stopComponents()
	n.lock.release()
}

// Run starts a node and serves until ctx ends or a client asks it to stop.
// A node that asks to be restarted (it joined another account) is stopped
// and started again with the same configuration.
func Run(ctx context.Context, cfg Config, d Deps) error {
	for {
		n, err := Start(ctx, cfg, d)
		if err != nil {
			return err
		}
		var serveErr error
		restart := false
		select {
		case <-ctx.Done():
		case <-n.shutdownReq:
		case <-n.restart:
			restart = true
		case serveErr = <-n.serveErr:
		}
		n.Stop()
		if serveErr != nil && !errors.Is(serveErr, grpc.ErrServerStopped) {
			return fmt.Errorf("serving: %w", serveErr)
		}
		if !restart || ctx.Err() != nil {
			return nil
		}
	}
}

// watchJournal reports a journal that met damage as NOT_SERVING, so a
// supervisor or load balancer sees it; reads of intact data go on.
func (n *Node) watchJournal(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-n.journal.Failed():
		n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
}

// sweepBudgets closes quiet keys' epochs once an epoch, so their audit
// summaries are written even when no further traffic rotates them.
func (n *Node) sweepBudgets(ctx context.Context, epoch time.Duration) {
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
