package transport

import (
	"context"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
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
