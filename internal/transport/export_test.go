package transport

import (
	"bufio"
	"context"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// WireFunc is the stream layer's send, for tests that watch or break it.
type WireFunc func(ctx context.Context, to peer.ID, frame []byte) error

type wireFunc WireFunc

func (f wireFunc) send(ctx context.Context, to peer.ID, frame []byte) error { return f(ctx, to, frame) }

// WrapWire puts wrap around the stream layer, so a test can count or fail
// what reaches the network.
func WrapWire(t *Transport, wrap func(next WireFunc) WireFunc) {
	t.wire = wireFunc(wrap(t.wire.send))
}

// HostOf exposes the host to tests that play a misbehaving peer.
func HostOf(t *Transport) host.Host { return t.host }

// OnLearned runs f each time a batch of learned peers is durable.
func OnLearned(t *Transport, f func()) { t.learn.after.Store(&f) }

// SetLearnLimit lowers the bound on learned peers.
func SetLearnLimit(t *Transport, n int) {
	t.learn.mu.Lock()
	defer t.learn.mu.Unlock()
	t.learn.limit = n
}

// Learn stores addresses as if the peers had announced them.
func Learn(ctx context.Context, t *Transport, s Store, batch map[peer.ID][]ma.Multiaddr) error {
	return t.learnPeers(ctx, s, batch)
}

// UsableAddrs is the filter applied to announced addresses.
func UsableAddrs(t *Transport, in []ma.Multiaddr, remote ma.Multiaddr) []ma.Multiaddr {
	return t.usableAddrs(in, remote)
}

// ReadFrameForTest reads one length-prefixed frame, as a peer would.
func ReadFrameForTest(r *bufio.Reader) ([]byte, error) {
	return readFrame(r, nil)
}
