package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/node"
)

// memNet is the in-process runner's network: libp2p's mocknet, whose links
// carry real libp2p streams between the nodes' hosts with a settable
// latency, and which the harness unlinks to partition.
type memNet struct {
	mn mocknet.Mocknet

	mu      sync.Mutex
	group   map[peer.ID]int // partition side of each peer; all 0 when healed
	latency time.Duration
}

func newMemNet() *memNet {
	return &memNet{mn: mocknet.New(), group: map[peer.ID]int{}}
}

// addHost puts a node's host on the network, linked to every peer on its
// side of the current partition. A restarted node gets a new host for the
// same peer id.
func (m *memNet) addHost(key p2pcrypto.PrivKey, index int) (host.Host, error) {
	addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/10.77.0.%d/tcp/4001", index+1))
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// A restarted node's links still join its old network to the others;
	// mocknet finds links by peer id, so the new host would dial through
	// them into the old one. Cut them before the new host joins.
	if _, restarted := m.group[id]; restarted {
		for _, other := range m.mn.Peers() {
			if other != id && len(m.mn.LinksBetweenPeers(id, other)) > 0 {
				if err := m.mn.UnlinkPeers(id, other); err != nil {
					return nil, err
				}
			}
		}
	}
	h, err := m.mn.AddPeer(key, addr)
	if err != nil {
		return nil, err
	}
	if _, ok := m.group[h.ID()]; !ok {
		m.group[h.ID()] = 0
	}
	for _, other := range m.mn.Peers() {
		if other != h.ID() && m.group[other] == m.group[h.ID()] {
			if err := m.link(h.ID(), other); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// link joins a and b unless they are linked already.
func (m *memNet) link(a, b peer.ID) error {
	if len(m.mn.LinksBetweenPeers(a, b)) > 0 {
		return nil
	}
	l, err := m.mn.LinkPeers(a, b)
	if err != nil {
		return err
	}
	l.SetOptions(mocknet.LinkOptions{Latency: m.latency})
	return nil
}

// partition puts each peer on the side given and cuts every link and
// connection across sides; peers not named stay on side 0.
func (m *memNet) partition(side map[peer.ID]int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.group {
		m.group[p] = side[p]
	}
	return m.relink()
}

// relink makes the links match the sides: linked within a side, cut across.
func (m *memNet) relink() error {
	peers := m.mn.Peers()
	for i, a := range peers {
		for _, b := range peers[i+1:] {
			if m.group[a] == m.group[b] {
				if err := m.link(a, b); err != nil {
					return err
				}
				continue
			}
			if len(m.mn.LinksBetweenPeers(a, b)) > 0 {
				if err := m.mn.UnlinkPeers(a, b); err != nil {
					return err
				}
			}
			// Cutting the link leaves open connections up; a partition
			// drops them, as a real network failure would.
			if err := m.mn.DisconnectPeers(a, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// setLatency sets the one-way delay of every link, present and future.
func (m *memNet) setLatency(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.latency = d
	m.mn.SetLinkDefaults(mocknet.LinkOptions{Latency: d})
	for _, byPeer := range m.mn.Links() {
		for _, links := range byPeer {
			for l := range links {
				l.SetOptions(mocknet.LinkOptions{Latency: d})
			}
		}
	}
}

// inProcess is a node.Node started in the test process on the memNet.
type inProcess struct {
	t     testing.TB
	dir   string
	index int
	net   *memNet

	mu      sync.Mutex
	n       *node.Node
	log     *syncBuffer
	done    chan struct{}
	ready   node.ReadyInfo
	stopped bool
}

func (p *inProcess) start() {
	p.t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = p.dir
	cfg.Socket = filepath.Join(p.dir, core.SocketName)
	cfg.ShutdownTimeout = node.Duration(4 * time.Second)
	log := &syncBuffer{}
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	level := zap.NewAtomicLevelAt(zap.InfoLevel)
	logger := zap.New(zapcore.NewCore(enc, zapcore.AddSync(log), level))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	n, err := node.Start(ctx, cfg, node.Deps{
		Logger:   logger.Named(fmt.Sprintf("node%d", p.index)),
		Notify:   func(string) {},
		LogLevel: &level,
		Host:     func(key p2pcrypto.PrivKey) (host.Host, error) { return p.net.addHost(key, p.index) },
	})
	if err != nil {
		p.t.Fatalf("node %d: start: %v\n%s", p.index, err, log)
	}
	r, ok := readReady(p.dir)
	if !ok {
		n.Stop()
		p.t.Fatalf("node %d: started without a ready.json", p.index)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.n, p.log, p.done, p.ready, p.stopped = n, log, done, r, false
	p.mu.Unlock()
	// auractl stop asks the node to shut down; a daemon's main would stop it.
	go func() {
		select {
		case <-n.ShutdownRequested():
			n.Stop()
		case <-done:
		}
	}()
	p.t.Cleanup(func() {
		p.halt()
		logProblems(p.t, fmt.Sprintf("node %d", p.index), log.String())
	})
}

// halt stops the node if it still runs and waits until it has.
func (p *inProcess) halt() {
	p.mu.Lock()
	n, done, stopped := p.n, p.done, p.stopped
	p.stopped = true
	p.mu.Unlock()
	if stopped {
		return
	}
	close(done)
	n.Stop() // idempotent: a node stopped through auractl returns at once
}
