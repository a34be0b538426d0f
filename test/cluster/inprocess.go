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
	down    map[peer.ID]bool
	latency time.Duration
}

func newMemNet() *memNet {
	return &memNet{mn: mocknet.New(), group: map[peer.ID]int{}, down: map[peer.ID]bool{}}
}

// hostDown takes a stopped node's host off the network. Mocknet keeps a
// closed host linked, and a dial to it succeeds: frames written to such a
// zombie vanish without an error, and a write blocked on it holds every
// later frame to that peer. A real network refuses the dial instead.
func (m *memNet) hostDown(id peer.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down[id] = true
	return m.cut(id)
}

// cut removes every link of id, then its connections: in that order, so no
// dial can slip through a link between the two steps.
func (m *memNet) cut(id peer.ID) error {
	for _, other := range m.mn.Peers() {
		if other == id {
			continue
		}
		if len(m.mn.LinksBetweenPeers(id, other)) > 0 {
			if err := m.mn.UnlinkPeers(id, other); err != nil {
				return err
			}
		}
		if err := m.mn.DisconnectPeers(id, other); err != nil {
			return err
		}
	}
	return nil
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
		if err := m.cut(id); err != nil {
			return nil, err
		}
	}
	delete(m.down, id)
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
			if m.group[a] == m.group[b] && !m.down[a] && !m.down[b] {
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

// inProcess is a node.Node started in the test process on the memNet, or,
// with no memNet, on real sockets.
type inProcess struct {
	t     testing.TB
	dir   string
	index int
	net   *memNet

	mu      sync.Mutex
	n       *node.Node
	peer    peer.ID // the host's, known once it started
	log     *syncBuffer
	done    chan struct{}
	ready   node.ReadyInfo
	stopped bool
}

func (p *inProcess) start() {
	p.t.Helper()
	if err := p.boot(); err != nil {
		p.t.Fatalf("node %d: %v", p.index, err)
	}
	p.t.Cleanup(func() {
		p.halt()
		p.mu.Lock()
		log := p.log
		p.mu.Unlock()
		logProblems(p.t, fmt.Sprintf("node %d", p.index), log.String())
	})
}

// boot starts the node and watches it for a shutdown or restart it asks
// for.
func (p *inProcess) boot() error {
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
	deps := node.Deps{
		Logger:   logger.Named(fmt.Sprintf("node%d", p.index)),
		Notify:   func(string) {},
		LogLevel: &level,
	}
	if p.net != nil {
		deps.Host = func(key p2pcrypto.PrivKey) (host.Host, error) {
			h, err := p.net.addHost(key, p.index)
			if err == nil {
				p.mu.Lock()
				p.peer = h.ID()
				p.mu.Unlock()
			}
			return h, err
		}
	}
	n, err := node.Start(ctx, cfg, deps)
	if err != nil {
		return fmt.Errorf("start: %w\n%s", err, log)
	}
	r, ok := readReady(p.dir)
	if !ok {
		n.Stop()
		return fmt.Errorf("started without a ready.json")
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.n, p.log, p.done, p.ready, p.stopped = n, log, done, r, false
	p.mu.Unlock()
	// auractl stop asks the node to shut down, and a node that joined
	// another account asks to start again; a daemon's main (node.Run) would
	// do both.
	go func() {
		select {
		case <-n.ShutdownRequested():
			n.Stop()
			p.down()
		case <-n.RestartRequested():
			p.restartAsked(n, log)
		case <-done:
		}
	}()
	return nil
}

// restartAsked stops n and starts the node again in place, as node.Run
// does. It runs beside the test, so a failure is reported, not fatal here.
func (p *inProcess) restartAsked(n *node.Node, log *syncBuffer) {
	p.mu.Lock()
	if p.n != n || p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	close(p.done)
	p.mu.Unlock()
	n.Stop()
	p.down()
	logProblems(p.t, fmt.Sprintf("node %d before its restart", p.index), log.String())
	if err := p.boot(); err != nil {
		p.t.Errorf("node %d: restart it asked for: %v", p.index, err)
	}
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
	p.down()
}

// down takes the stopped node's host off the network.
func (p *inProcess) down() {
	p.mu.Lock()
	id := p.peer
	p.mu.Unlock()
	if id == "" || p.net == nil {
		return
	}
	if err := p.net.hostDown(id); err != nil {
		p.t.Errorf("node %d: take its host off the network: %v", p.index, err)
	}
}
