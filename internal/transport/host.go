package transport

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
)

// Config is the host's part of aurad's configuration.
type Config struct {
	// ListenAddrs are multiaddrs; the default binds loopback on random ports,
	// so a bare start exposes nothing to the network.
	ListenAddrs []string
	// MDNS finds peers on the local network.
	MDNS bool
	// Relay lets the host reach and be reached through circuit relays.
	Relay bool
	// HolePunching upgrades relayed connections to direct ones (needs Relay).
	HolePunching bool
	// ConnLow and ConnHigh are the connection manager's watermarks.
	ConnLow, ConnHigh int
	// HostOptions and ResourceManagerOptions are added to the host's own
	// (metrics registration).
	HostOptions            []libp2p.Option
	ResourceManagerOptions []rcmgr.Option
}

// DefaultListenAddrs bind loopback only.
func DefaultListenAddrs() []string {
	return []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
}

// Start builds the host from the device key and returns the transport.
func Start(ctx context.Context, key ed25519.PrivateKey, cfg Config, o Options) (*Transport, error) {
	if o.Authorizer == nil || o.Charger == nil {
		return nil, fmt.Errorf("transport needs an authorizer and a charger: %w", core.ErrInternal)
	}
	priv, err := p2pcrypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		return nil, err
	}
	self, err := core.DeviceIDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if len(cfg.ListenAddrs) == 0 {
		cfg.ListenAddrs = DefaultListenAddrs()
	}
	if cfg.ConnLow == 0 {
		cfg.ConnLow, cfg.ConnHigh = 32, 96
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.DefaultLimits.AutoScale()), cfg.ResourceManagerOptions...)
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	o = o.withDefaults()
	mis := newMisbehaviour(o.Clock, o.MisbehaviourLimit, o.MisbehaviourWindow)
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(&gater{m: mis}),
		libp2p.UserAgent("aurad"),
		libp2p.Ping(false),
	}
	if cfg.Relay {
		opts = append(opts, libp2p.EnableRelay())
		if cfg.HolePunching {
			opts = append(opts, libp2p.EnableHolePunching())
		}
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	opts = append(opts, cfg.HostOptions...)
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	// The gater and the drop counter share one record of offenders.
	t := newTransport(h, self, o, mis)
	if cfg.MDNS {
		svc := mdns.NewMdnsService(h, "aura", &mdnsNotifee{t: t})
		if err := svc.Start(); err != nil {
			h.Close()
			return nil, fmt.Errorf("mdns: %w", err)
		}
		t.closers = append(t.closers, svc.Close)
	}
	return t, nil
}

// StartOn runs the transport on a host built elsewhere: an in-memory network
// whose links a test harness partitions and slows (libp2p's mocknet). The
// host's own connection gater, if any, is the builder's; backed-off peers are
// still refused by the transport on dial and on every inbound stream.
func StartOn(h host.Host, o Options) (*Transport, error) {
	if o.Authorizer == nil || o.Charger == nil {
		return nil, fmt.Errorf("transport needs an authorizer and a charger: %w", core.ErrInternal)
	}
	pub, err := h.ID().ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("host identity: %w", err)
	}
	raw, err := pub.Raw()
	if err != nil || pub.Type() != p2pcrypto.Ed25519 {
		return nil, fmt.Errorf("host identity is not an Ed25519 device key: %w", core.ErrInvalidArgument)
	}
	self, err := core.DeviceIDFromKey(ed25519.PublicKey(raw))
	if err != nil {
		return nil, err
	}
	o = o.withDefaults()
	return newTransport(h, self, o, newMisbehaviour(o.Clock, o.MisbehaviourLimit, o.MisbehaviourWindow)), nil
}

// Addrs returns the bound listen addresses, each with /p2p/<peer id>.
func (t *Transport) Addrs() []string {
	suffix, _ := ma.NewComponent("p2p", t.host.ID().String())
	var out []string
	for _, a := range t.host.Addrs() {
		out = append(out, a.Encapsulate(suffix).String())
	}
	return out
}

// drainTimeout bounds how long Shutdown waits for peers to take in what was
// already sent.
const drainTimeout = time.Second

// Shutdown lets peers take in the frames already written, stops the loops and
// closes the host.
func (t *Transport) Shutdown() error {
	t.streams.drain(drainTimeout)
	t.cancel()
	for _, c := range t.closers {
		_ = c()
	}
	// The learner may be mid-commit; the journal closes after the transport.
	t.learn.wg.Wait()
	return t.host.Close()
}

// gater refuses connections to and from peers that are backed off.
type gater struct{ m *misbehaviour }

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return !g.m.banned(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.m.banned(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.m.banned(p)
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

type mdnsNotifee struct{ t *Transport }

func (n *mdnsNotifee) HandlePeerFound(pi peer.AddrInfo) {
	if pi.ID == n.t.host.ID() {
		return
	}
	n.t.log.Info("peer found on the local network", zap.Stringer("peer", pi.ID))
	ctx, cancel := context.WithTimeout(n.t.ctx, 10*time.Second)
	defer cancel()
	_ = n.t.host.Connect(ctx, pi)
}
