package transport

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aura-p2p/aura/internal/core"
)

// ProtocolEnvelope is the stream protocol every Aura message travels on; the
// envelope names the message's own protocol. A peer that reads envelope
// version 3 (capability tokens) also speaks ProtocolEnvelope3, and streams
// are opened offering that first: the negotiated protocol tells a sender,
// before it pays for anything, whether the peer can read what it is about to
// send, so an older peer means a clear refusal, never a silent drop.
//
// ProtocolEnvelope4 carries the same envelopes with compact receipts:
// unsigned, with a signed checkpoint of the chain at least every
// CheckpointEvery receipts (internal/budget). A peer that speaks it reads
// everything ProtocolEnvelope3 carries; to a peer that does not, receipts
// go signed one by one, as before.
const (
	ProtocolEnvelope  protocol.ID = "/aura/envelope/1"
	ProtocolEnvelope3 protocol.ID = "/aura/envelope/3"
	ProtocolEnvelope4 protocol.ID = "/aura/envelope/4"
)

// CheckpointEvery is the protocol's bound on unsigned receipts: a sender
// signs a checkpoint of its chain on every receipt whose nonce is a multiple
// of it, so a receiver never sees as many unsigned receipts in a row and
// refuses the sender that sends them.
const CheckpointEvery = 256

// envelopeProtocols are offered when a stream opens, newest first.
var envelopeProtocols = []protocol.ID{ProtocolEnvelope4, ProtocolEnvelope3, ProtocolEnvelope}

// readsTokens reports whether a peer on stream protocol p reads envelope
// version 3 (capability tokens).
func readsTokens(p protocol.ID) bool { return p == ProtocolEnvelope3 || p == ProtocolEnvelope4 }

// ErrPeerTooOld: the peer's aurad predates what the message needs.
var ErrPeerTooOld = fmt.Errorf("the peer runs an older aurad that cannot read capability tokens (upgrade it): %w", core.ErrFailedPrecondition)

// streamWire keeps one outbound stream per peer, so messages to a peer arrive
// in the order they were written and do not pay a stream open each.
type streamWire struct {
	host host.Host

	mu      sync.Mutex
	streams map[peer.ID]*outStream
}

type outStream struct {
	mu sync.Mutex
	s  network.Stream
	w  *bufio.Writer
	// conn is s's connection, readable without mu.
	conn atomic.Pointer[network.Conn]
	// proto is the protocol the peer agreed to on the latest stream,
	// readable without mu: a send asks it before it is charged, and must
	// not wait behind the frame being written.
	proto atomic.Pointer[protocol.ID]
}

// writeTimeout bounds one frame's write: a peer that reads nothing for this
// long is treated as gone, and the frame fails rather than holding the
// stream (and every frame behind it) for good.
const writeTimeout = 30 * time.Second

func newStreamWire(h host.Host) *streamWire {
	return &streamWire{host: h, streams: map[peer.ID]*outStream{}}
}

func (w *streamWire) stream(k peer.ID) *outStream {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.streams[k]
	if o == nil {
		o = &outStream{}
		w.streams[k] = o
	}
	return o
}

// send writes one frame, opening (or, after a failure, reopening once) the
// stream. The frame has already been paid for: a failure here loses the
// payment, never creates a send without one.
func (w *streamWire) send(ctx context.Context, to peer.ID, frame []byte) error {
	o := w.stream(to)
	o.mu.Lock()
	defer o.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if o.s != nil && o.s.Conn().IsClosed() {
			// The peer went away (and may be back on a new connection):
			// a write to the old stream could vanish without an error.
			o.s.Reset()
			o.s, o.w = nil, nil
		}
		if o.s == nil {
			s, err := w.host.NewStream(network.WithAllowLimitedConn(ctx, string(ProtocolEnvelope)), to, envelopeProtocols...)
			if err != nil {
				return fmt.Errorf("open stream: %w", err)
			}
			o.opened(s)
		}
		_ = o.s.SetWriteDeadline(time.Now().Add(writeTimeout))
		err := writeFrame(o.w, frame)
		if err == nil {
			err = o.w.Flush()
		}
		if err == nil {
			return nil
		}
		o.s.Reset()
		o.s, o.w = nil, nil
		if attempt == 1 {
			return err
		}
	}
}

// incoming notes that the peer opened a stream on c. If the stream we write
// to the peer runs on an older connection, that connection is likely dead
// without knowing it (a peer killed and restarted on UDP sends no close), and
// a write on it may be blocked: the connection is closed, which fails that
// write, and the retry opens a stream on the live one. No lock is taken, so
// a blocked writer cannot hold up the peer's incoming frames.
func (w *streamWire) incoming(c network.Conn) {
	o := w.stream(c.RemotePeer())
	old := o.conn.Load()
	if old == nil || *old == c || !(*old).Stat().Opened.Before(c.Stat().Opened) {
		return
	}
	_ = (*old).Close()
}

// forget drops the stream to a peer whose connections all closed, so the
// next frame opens a new one rather than trusting the old.
func (w *streamWire) forget(to peer.ID) {
	o := w.stream(to)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.s != nil {
		o.s.Reset()
		o.s, o.w = nil, nil
	}
}

// negotiated opens the stream to a peer if there is none and returns the
// envelope protocol the peer agreed to.
// Once a stream is open it answers without the stream's lock; a stream that
// closed since answers what its peer last agreed to, which the reopened
// stream almost always repeats.
func (w *streamWire) negotiated(ctx context.Context, to peer.ID) (protocol.ID, error) {
	o := w.stream(to)
	if p := o.proto.Load(); p != nil {
		return *p, nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.s == nil {
		s, err := w.host.NewStream(network.WithAllowLimitedConn(ctx, string(ProtocolEnvelope)), to, envelopeProtocols...)
		if err != nil {
			return "", fmt.Errorf("open stream: %w", err)
		}
		o.opened(s)
	}
	return o.s.Protocol(), nil
}

// opened makes s the stream to write to; o.mu is held.
func (o *outStream) opened(s network.Stream) {
	o.s, o.w = s, bufio.NewWriterSize(s, 32<<10)
	c := s.Conn()
	o.conn.Store(&c)
	p := s.Protocol()
	o.proto.Store(&p)
}

// drain closes every outbound stream for writing and waits, up to timeout,
// for each receiver to close its side: it reads frames in order until it sees
// the end, so a closed side means every frame written was taken in. Without
// this, frames still in buffers when the host closes are lost.
func (w *streamWire) drain(timeout time.Duration) {
	w.mu.Lock()
	streams := make([]*outStream, 0, len(w.streams))
	for _, o := range w.streams {
		streams = append(streams, o)
	}
	w.mu.Unlock()
	deadline := time.Now().Add(timeout)
	var wg sync.WaitGroup
	for _, o := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.mu.Lock()
			defer o.mu.Unlock()
			if o.s == nil {
				return
			}
			if o.w.Flush() == nil && o.s.CloseWrite() == nil {
				_ = o.s.SetReadDeadline(deadline)
				_, _ = io.Copy(io.Discard, o.s)
			}
			_ = o.s.Close()
			o.s, o.w = nil, nil
		}()
	}
	wg.Wait()
}
