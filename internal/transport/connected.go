package transport

import (
	"bytes"
	"slices"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
)

// OnConnected registers fn to hear of every device that becomes connected
// (first connection, or again after all its connections closed): what sync
// needs to reconcile at once on every (re)connection. fn runs on the event
// goroutine and must return quickly.
func (t *Transport) OnConnected(fn func(core.DeviceID)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onConnected = append(t.onConnected, fn)
}

// Connected lists the devices with an open connection, sorted.
func (t *Transport) Connected() []core.DeviceID {
	var out []core.DeviceID
	for _, pid := range t.host.Network().Peers() {
		if t.host.Network().Connectedness(pid) != network.Connected {
			continue
		}
		if d, err := DeviceIDOf(pid); err == nil {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b core.DeviceID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Misbehaved counts a peer's protocol violation found above the transport (a
// forged fact, a lying sync peer) as a dropped frame under reason: it counts
// towards cutting the peer off like any frame the transport itself refused.
func (t *Transport) Misbehaved(d core.DeviceID, reason string, err error) {
	pid, perr := PeerID(d)
	if perr != nil {
		return
	}
	t.drop(pid, reason, err)
}

// watchConnections follows the host's connectedness events.
func (t *Transport) watchConnections() {
	sub, err := t.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		t.log.Warn("connections will not be followed; sync waits for its timer", zap.Error(err))
		return
	}
	t.closers = append(t.closers, sub.Close)
	go func() {
		for {
			select {
			case <-t.ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				ev, ok := e.(event.EvtPeerConnectednessChanged)
				if !ok {
					continue
				}
				if ev.Connectedness == network.NotConnected {
					t.streams.forget(ev.Peer)
					continue
				}
				if ev.Connectedness != network.Connected {
					continue
				}
				d, err := DeviceIDOf(ev.Peer)
				if err != nil {
					continue
				}
				t.mu.RLock()
				fns := t.onConnected
				t.mu.RUnlock()
				for _, fn := range fns {
					fn(d)
				}
			}
		}
	}()
}
