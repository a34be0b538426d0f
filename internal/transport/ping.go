package transport

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
)

// ProtocolPing measures round trips through the whole guard chain.
const ProtocolPing protocol.ID = "/aura/ping/1"

// Ping message types and their flow cost: one unit each way.
const (
	TypePing = "ping"
	TypePong = "pong"
	PingCost = 1
)

// pingLeakage: a ping reveals to an outside observer that two devices talk.
var pingLeakage = core.Leakage{1, 0, 0}

// Pinger answers pings and sends them.
type Pinger struct {
	t     *Transport
	clock core.Clock

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan struct{}
}

// NewPinger registers the ping protocol on t; authz must allow its types.
func NewPinger(t *Transport, authz *MemberAuthorizer) *Pinger {
	p := &Pinger{t: t, clock: t.clock, waiting: map[uint64]chan struct{}{}}
	authz.Allow(TypePing, core.ClassLink, core.ClassContact, core.ClassGroup)
	authz.Allow(TypePong, core.ClassLink, core.ClassContact, core.ClassGroup)
	t.Handle(ProtocolPing, p.handle)
	return p
}

func (p *Pinger) handle(ctx context.Context, m Incoming) {
	switch m.Type {
	case TypePing:
		if len(m.Payload) != 8 {
			return
		}
		// The answer pays its own way through the guard chain.
		err := p.t.Send(ctx, Message{Protocol: ProtocolPing, Context: m.Context, To: m.From, Type: TypePong, Cost: PingCost, Leakage: pingLeakage, Payload: m.Payload})
		if err != nil {
			p.t.log.Debug("pong not sent", zap.Error(err))
		}
	case TypePong:
		if len(m.Payload) != 8 {
			return
		}
		p.mu.Lock()
		ch := p.waiting[binary.BigEndian.Uint64(m.Payload)]
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// PingResult is one round trip.
type PingResult struct {
	Seq     uint64
	RTT     time.Duration
	Context core.ContextID
	// Charged is what this device paid: the ping's flow cost.
	Charged uint64
}

// Ping sends one ping to d in context c (the link context when nil) and waits
// for the pong.
func (p *Pinger) Ping(ctx context.Context, d core.DeviceID, c *core.ContextID) (PingResult, error) {
	return p.PingClaiming(ctx, d, c, Claim{})
}

// PingClaiming is Ping with a capability claim (and the token that grants
// it) on the ping: both ends check it at the guard chain, so an operator can
// see whether a token is honoured without writing a protocol.
func (p *Pinger) PingClaiming(ctx context.Context, d core.DeviceID, c *core.ContextID, claim Claim) (PingResult, error) {
	cid := core.LinkContext(p.t.self, d)
	if c != nil {
		cid = *c
	}
	p.mu.Lock()
	p.next++
	seq := p.next
	ch := make(chan struct{}, 1)
	p.waiting[seq] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiting, seq)
		p.mu.Unlock()
	}()
	start := time.Now()
	err := p.t.Send(ctx, Message{Protocol: ProtocolPing, Context: cid, To: d, Type: TypePing, Capability: claim.Capability, Token: claim.Token, Cost: PingCost, Leakage: pingLeakage, Payload: binary.BigEndian.AppendUint64(nil, seq)})
	if err != nil {
		return PingResult{}, err
	}
	select {
	case <-ch:
		rtt := time.Since(start)
		// The host's own ping service is off (every byte goes through the
		// guard chain), so these round trips are what the peer list shows.
		if pid, err := PeerID(d); err == nil {
			p.t.host.Peerstore().RecordLatency(pid, rtt)
		}
		return PingResult{Seq: seq, RTT: rtt, Context: cid, Charged: PingCost}, nil
	case <-ctx.Done():
		return PingResult{}, fmt.Errorf("no pong from %s: %w", d, ctx.Err())
	}
}
