package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Authorizer is the capability step: may this device send a message of this
// type, claiming this capability, to dst in this context? It returns the
// context's class.
type Authorizer interface {
	Authorize(ctx context.Context, c core.ContextID, dst core.DeviceID, msgType string, claim Claim) (core.Class, error)
	// AuthorizeIncoming checks a message received from src and what it
	// claimed for it. A claim src does not hold is refused with an error
	// wrapping ErrCapabilityDenied.
	AuthorizeIncoming(ctx context.Context, c core.ContextID, src core.DeviceID, msgType string, claim Claim) (core.Class, error)
}

// Claim is what a message claims: a capability ("" for none) and, if the
// capability is not one membership grants, the capability token that
// grants it to the sender.
type Claim struct {
	Capability string
	Token      []byte
}

// Charge is what the guard chain asks the budget ledger to charge and commit.
type Charge struct {
	Context core.ContextID
	Peer    core.DeviceID
	Class   core.Class
	Cost    uint64
	Leakage core.Leakage
	// Facts commit atomically with the charge (journal coupling).
	Facts []*journal.SignedFact
	// Queued, if set, is called once the charge has its place in its
	// chain (its nonce) and before it is durable; a Charger may never call
	// it (the charge is then ordered when Charge returns).
	Queued func()
}

// Receipt is the ledger's proof of one payment.
type Receipt struct {
	Epoch core.Epoch
	Nonce uint64
	// Seal encodes it for the envelope: compact for a peer on
	// ProtocolEnvelope4, signed whole for an older one.
	Seal func(compact bool) ([]byte, error)
}

// Charger is the flow-budget and journal-coupling steps, and the receive-side
// receipt check. Charge returns only once the charge and its facts are durable;
// a denial leaves no trace.
type Charger interface {
	Charge(ctx context.Context, c Charge) (Receipt, error)
	Accept(ctx context.Context, e *Envelope, c core.Class) error
	// ChainStart is the last nonce of a send chain that was durable before
	// this process started charging it (0 if none): the transport waits for
	// no frame at or below it.
	ChainStart(c core.ContextID, peer core.DeviceID, e core.Epoch) uint64
}

// Message is what a protocol asks Send to deliver.
type Message struct {
	Protocol protocol.ID
	Context  core.ContextID
	To       core.DeviceID
	Type     string
	// Capability the sender must hold in the context ("" for none); it
	// travels in the envelope, and the receiver checks the claim too.
	Capability string
	// Token, if set, is the capability token that grants Capability to
	// this device; it travels with the message.
	Token   []byte
	Cost    uint64
	Leakage core.Leakage
	Facts   []*journal.SignedFact
	Payload []byte
	// Queued, if set, is called at most once, when the message has its
	// place in its chain: a Send of the same context and peer started after
	// that goes out after this one. It lets a sender keep many messages in
	// flight, in order, while their charges share group commits. Send may
	// return without calling it (a refusal, or a charger that does not
	// tell); the message is then ordered when Send returns.
	Queued func()
}

// Incoming is a message that passed every check.
type Incoming struct {
	Protocol protocol.ID
	Context  core.ContextID
	From     core.DeviceID
	Class    core.Class
	Epoch    core.Epoch
	Type     string
	// Capability the sender claimed and the receiver found it holds.
	Capability string
	Payload    []byte
}

// Handler consumes incoming messages of one protocol, in the order the sender
// sent them.
type Handler func(ctx context.Context, m Incoming)

// wire is the stream layer: the only thing that writes to the network.
type wire interface {
	send(ctx context.Context, to peer.ID, frame []byte) error
}

// Sentinel errors of the guard chain and the receive path.
var (
	ErrUnknownProtocol = fmt.Errorf("protocol not registered: %w", core.ErrInvalidArgument)
	ErrSelf            = fmt.Errorf("a device does not send to itself: %w", core.ErrInvalidArgument)
	ErrBackoff         = fmt.Errorf("peer is backed off after repeated misbehaviour: %w", core.ErrUnavailable)
	// ErrEpochSchedule: a receipt made on another budget schedule than this
	// device's, such as one from a peer on an older protocol version whose
	// epochs follow its local setting. Such a peer is not short of budget and
	// is not forging anything: it needs an upgrade or another configuration,
	// and the operator needs to see that. A Charger's Accept wraps it, and the
	// receive path counts these drops under their own reason.
	ErrEpochSchedule = fmt.Errorf("peer's budget epoch schedule differs from this device's: %w", core.ErrFailedPrecondition)
)

// Drop reasons, counted per reason.
const (
	DropBadFrame     = "bad_frame"
	DropWrongSender  = "wrong_sender"
	DropUnauthorized = "unauthorized"
	DropReceipt      = "receipt"
	DropNoHandler    = "no_handler"
	// DropEpochSchedule: a receipt refused with ErrEpochSchedule.
	DropEpochSchedule = "epoch_schedule_mismatch"
	// DropCapabilityDenied: the sender claimed a capability it does not hold
	// (ErrCapabilityDenied).
	DropCapabilityDenied = "capability_denied"
	// DropBlocked: the sender belongs to a blocked contact. Not
	// misbehaviour: the peer may not know, and an unblock must work at once.
	DropBlocked = "blocked"
)

// Transport owns the host and the guard chain.
type Transport struct {
	host    host.Host
	self    core.DeviceID
	log     *zap.Logger
	clock   core.Clock
	authz   Authorizer
	charger Charger
	wire    wire
	// streams is the real stream layer under wire, drained on shutdown.
	streams *streamWire

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.RWMutex
	handlers map[protocol.ID]Handler
	seq      *sequencer
	// onConnected hear of devices as they connect (connected.go).
	onConnected []func(core.DeviceID)

	closers    []func() error
	drops      sync.Map // reason -> *atomic.Uint64
	misbehave  *misbehaviour
	sent, recv atomic.Uint64
	// Frame bytes written and read at the stream layer (every frame read,
	// refused ones too): what the wire carries, less Noise and muxer
	// overhead.
	sentBytes, recvBytes atomic.Uint64
	// learn keeps identified peers' addresses in the peer book.
	learn *learner
}

// Options configure a Transport beyond its host.
type Options struct {
	Logger     *zap.Logger
	Clock      core.Clock
	Authorizer Authorizer
	Charger    Charger
	// MisbehaviourLimit is how many dropped frames from one peer within
	// MisbehaviourWindow get it disconnected (defaults 64 and 10s).
	MisbehaviourLimit  int
	MisbehaviourWindow time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = core.SystemClock{}
	}
	if o.MisbehaviourLimit <= 0 {
		o.MisbehaviourLimit = 64
	}
	if o.MisbehaviourWindow <= 0 {
		o.MisbehaviourWindow = 10 * time.Second
	}
	return o
}

// newTransport wraps a started host; mis is shared with the host's gater.
func newTransport(h host.Host, self core.DeviceID, o Options, mis *misbehaviour) *Transport {
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		host: h, self: self, log: o.Logger, clock: o.Clock,
		authz: o.Authorizer, charger: o.Charger,
		ctx: ctx, cancel: cancel,
		handlers: map[protocol.ID]Handler{},
		seq:      newSequencer(),
	}
	t.misbehave = mis
	t.streams = newStreamWire(h)
	t.wire = t.streams
	t.startLearning()
	t.watchConnections()
	// Last: a stream may arrive the moment the handler is set, and its
	// goroutine reads the fields above.
	h.SetStreamHandler(ProtocolEnvelope, t.serveStream)
	h.SetStreamHandler(ProtocolEnvelope3, t.serveStream)
	h.SetStreamHandler(ProtocolEnvelope4, t.serveStream)
	return t
}

// Self is this device.
func (t *Transport) Self() core.DeviceID { return t.self }

// Handle registers the handler of a protocol.
func (t *Transport) Handle(proto protocol.ID, h Handler) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.handlers[proto] = h
}

// Send runs the guard chain and delivers m. It returns only after the frame
// was written, or with the step that refused it.
func (t *Transport) Send(ctx context.Context, m Message) error {
	if m.To == t.self {
		return ErrSelf
	}
	t.mu.RLock()
	_, known := t.handlers[m.Protocol]
	t.mu.RUnlock()
	if !known {
		return fmt.Errorf("%s: %w", m.Protocol, ErrUnknownProtocol)
	}
	if len(m.Payload) > MaxPayload {
		return fmt.Errorf("payload of %d bytes, limit %d: %w", len(m.Payload), MaxPayload, core.ErrInvalidArgument)
	}
	if len(m.Type) == 0 || len(m.Type) > MaxTypeLen {
		return fmt.Errorf("message type %q: %w", m.Type, core.ErrInvalidArgument)
	}
	if len(m.Token) > 0 && m.Capability == "" {
		return fmt.Errorf("a capability token without the capability it is for: %w", core.ErrInvalidArgument)
	}
	if len(m.Token) > MaxTokenLen {
		return fmt.Errorf("capability token of %d bytes, limit %d: %w", len(m.Token), MaxTokenLen, core.ErrInvalidArgument)
	}
	if len(m.Capability) > MaxCapabilityLen {
		return fmt.Errorf("capability of %d bytes, limit %d: %w", len(m.Capability), MaxCapabilityLen, core.ErrInvalidArgument)
	}
	pid, err := PeerID(m.To)
	if err != nil {
		return err
	}
	if t.misbehave.banned(pid) {
		return fmt.Errorf("%s: %w", m.To, ErrBackoff)
	}
	// 1. capability
	class, err := t.authz.Authorize(ctx, m.Context, m.To, m.Type, Claim{Capability: m.Capability, Token: m.Token})
	if err != nil {
		return fmt.Errorf("capability: %w", err)
	}
	// What the peer reads is asked before anything is paid: a token needs
	// envelope version 3, so an older peer is a clear refusal, not a drop;
	// and the receipt's form follows the stream's protocol.
	proto, err := t.streams.negotiated(ctx, pid)
	if err != nil {
		return fmt.Errorf("send to %s: %w: %w", m.To, err, core.ErrUnavailable)
	}
	if len(m.Token) > 0 && !readsTokens(proto) {
		return fmt.Errorf("send to %s: %w", m.To, ErrPeerTooOld)
	}
	// 2 + 3. flow budget, persisted together with the message's facts
	r, err := t.charger.Charge(ctx, Charge{Context: m.Context, Peer: m.To, Class: class, Cost: m.Cost, Leakage: m.Leakage, Facts: m.Facts, Queued: onceFunc(m.Queued)})
	if err != nil {
		return fmt.Errorf("flow budget: %w", err)
	}
	// 4. send, in the order of the receipt chain: charges complete in nonce
	// order, but the goroutines that made them may wake in any order.
	env := Envelope{
		Context: m.Context, Src: t.self, Dst: m.To, Epoch: r.Epoch, Seq: r.Nonce,
		Cost: m.Cost, Protocol: string(m.Protocol), Type: m.Type, Capability: m.Capability, Token: m.Token, Payload: m.Payload,
	}
	chain := chainKey{context: m.Context, peer: m.To, epoch: r.Epoch}
	if !t.seq.wait(chain, r.Nonce, func() uint64 { return t.charger.ChainStart(m.Context, m.To, r.Epoch) }) {
		// A bug: the frames before this one never came.
		t.log.Error("receipt chain stalled; sending out of order", zap.Stringer("peer", m.To), zap.Uint64("nonce", r.Nonce))
	}
	// The frame is paid for: it goes out even if the caller has given up,
	// and the chain moves on whatever happens to it. Its receipt is sealed
	// in chain order, so a checkpoint is signed over the chain's receipts
	// in the order they leave.
	v4 := proto == ProtocolEnvelope4
	env.Receipt, err = r.Seal(v4)
	if err == nil {
		encode := env.Encode
		if v4 {
			encode = env.EncodeV4
		}
		frame := encode()
		if err = t.wire.send(context.WithoutCancel(ctx), pid, frame); err == nil {
			t.sentBytes.Add(uint64(len(frame)))
		}
	}
	t.seq.done(chain, r.Nonce)
	if err != nil {
		return fmt.Errorf("send to %s: %w: %w", m.To, err, core.ErrUnavailable)
	}
	t.sent.Add(1)
	return nil
}

// serveStream reads one peer's frames of one protocol, in order.
func (t *Transport) serveStream(s network.Stream) {
	defer s.Close()
	remote := s.Conn().RemotePeer()
	if t.misbehave.banned(remote) {
		s.Reset()
		return
	}
	from, err := DeviceIDOf(remote)
	if err != nil {
		s.Reset()
		return
	}
	t.streams.incoming(s.Conn())
	r := bufio.NewReaderSize(s, 64<<10)
	var buf []byte
	for {
		frame, err := readFrame(r, buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, network.ErrReset) && t.ctx.Err() == nil {
				if errors.Is(err, ErrBadFrame) {
					t.drop(remote, DropBadFrame, err)
				}
				s.Reset()
			}
			return
		}
		buf = frame[:0]
		t.recvBytes.Add(uint64(len(frame)))
		if !t.accept(remote, from, frame) && t.misbehave.banned(remote) {
			s.Reset()
			return
		}
	}
}

// accept checks one frame and hands it to the handler.
func (t *Transport) accept(remote peer.ID, from core.DeviceID, frame []byte) bool {
	env, err := DecodeEnvelope(frame)
	if err != nil {
		t.drop(remote, DropBadFrame, err)
		return false
	}
	if env.V4() {
		// Version 4 names neither end: the stream does.
		env.Src, env.Dst = from, t.self
	}
	if env.Src != from || env.Dst != t.self {
		t.drop(remote, DropWrongSender, fmt.Errorf("envelope from %s to %s on a stream from %s", env.Src, env.Dst, from))
		return false
	}
	ctx := t.ctx
	class, err := t.authz.AuthorizeIncoming(ctx, env.Context, from, env.Type, Claim{Capability: env.Capability, Token: env.Token})
	if err != nil {
		reason := DropUnauthorized
		switch {
		case errors.Is(err, ErrBlocked):
			t.count(remote, DropBlocked, err)
			return false
		case errors.Is(err, ErrCapabilityDenied):
			reason = DropCapabilityDenied
		}
		t.drop(remote, reason, err)
		return false
	}
	if err := t.charger.Accept(ctx, env, class); err != nil {
		reason := DropReceipt
		if errors.Is(err, ErrEpochSchedule) {
			reason = DropEpochSchedule
		}
		t.drop(remote, reason, err)
		return false
	}
	proto := protocol.ID(env.Protocol)
	t.mu.RLock()
	h := t.handlers[proto]
	t.mu.RUnlock()
	if h == nil {
		t.drop(remote, DropNoHandler, fmt.Errorf("no handler for %s", proto))
		return false
	}
	t.recv.Add(1)
	// The envelope aliases the read buffer, which the next frame reuses.
	payload := append([]byte(nil), env.Payload...)
	h(ctx, Incoming{Protocol: proto, Context: env.Context, From: from, Class: class, Epoch: env.Epoch, Type: env.Type, Capability: env.Capability, Payload: payload})
	return true
}

// drop counts a refused frame and, past the limit, cuts the peer off.
func (t *Transport) drop(p peer.ID, reason string, err error) {
	t.count(p, reason, err)
	if t.misbehave.record(p) {
		t.log.Info("disconnecting misbehaving peer", zap.Stringer("peer", p), zap.Duration("backoff", t.misbehave.backoffOf(p)))
		_ = t.host.Network().ClosePeer(p)
	}
}

// count counts a refused frame under reason.
func (t *Transport) count(p peer.ID, reason string, err error) {
	c, _ := t.drops.LoadOrStore(reason, new(atomic.Uint64))
	c.(*atomic.Uint64).Add(1)
	// Debug, never error: a peer's misbehaviour is not a bug of ours.
	t.log.Debug("dropped frame", zap.Stringer("peer", p), zap.String("reason", reason), zap.Error(err))
}

// Stats are the transport's counters.
type Stats struct {
	Sent, Received uint64
	// SentBytes and ReceivedBytes are frame bytes; ReceivedBytes counts
	// refused frames too.
	SentBytes, ReceivedBytes uint64
	Dropped                  map[string]uint64
	ConnectedPeers           int
}

// Stats reads the counters.
func (t *Transport) Stats() Stats {
	s := Stats{Sent: t.sent.Load(), Received: t.recv.Load(), SentBytes: t.sentBytes.Load(), ReceivedBytes: t.recvBytes.Load(), Dropped: map[string]uint64{}, ConnectedPeers: len(t.host.Network().Peers())}
	t.drops.Range(func(k, v any) bool {
		s.Dropped[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return s
}

// misbehaviour tracks dropped frames per peer and backs off repeat offenders:
// the first cut lasts a minute, each further one twice as long, up to an hour.
type misbehaviour struct {
	clock  core.Clock
	limit  int
	window time.Duration

	mu    sync.Mutex
	peers map[peer.ID]*offender
}

type offender struct {
	windowStart time.Time
	count       int
	bannedUntil time.Time
	backoff     time.Duration
}

func newMisbehaviour(clock core.Clock, limit int, window time.Duration) *misbehaviour {
	return &misbehaviour{clock: clock, limit: limit, window: window, peers: map[peer.ID]*offender{}}
}

// record counts one failure; it reports whether the peer is now cut off.
func (m *misbehaviour) record(p peer.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	o := m.peers[p]
	if o == nil {
		o = &offender{}
		m.peers[p] = o
	}
	if now.Sub(o.windowStart) > m.window {
		o.windowStart, o.count = now, 0
	}
	o.count++
	if o.count < m.limit || now.Before(o.bannedUntil) {
		return false
	}
	if o.backoff == 0 {
		o.backoff = time.Minute
	} else {
		o.backoff = min(2*o.backoff, time.Hour)
	}
	o.bannedUntil = now.Add(o.backoff)
	o.count = 0
	return true
}

func (m *misbehaviour) banned(p peer.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.peers[p]
	return o != nil && m.clock.Now().Before(o.bannedUntil)
}

func (m *misbehaviour) backoffOf(p peer.ID) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.peers[p]; o != nil {
		return o.backoff
	}
	return 0
}

// banList returns the peers currently refused, sorted, for status displays.
func (m *misbehaviour) banList() []peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	var out []peer.ID
	for p, o := range m.peers {
		if now.Before(o.bannedUntil) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// chainKey names one receipt chain.
type chainKey struct {
	context core.ContextID
	peer    core.DeviceID
	epoch   core.Epoch
}

// maxSequenceWait bounds how long a frame waits for its chain's earlier ones.
const maxSequenceWait = 10 * time.Second

// sequencer lets the frames of a receipt chain onto the wire in nonce order.
// Each waiting frame has its own channel, closed when the frame before it is
// done: a pipeline of a thousand frames in flight wakes one goroutine per
// frame, not all of them (a broadcast made that quadratic).
type sequencer struct {
	mu     sync.Mutex
	next   map[chainKey]uint64 // next nonce allowed out; absent means 1
	active map[chainKey]int    // goroutines waiting or writing
	// writing is the nonce whose frame is on the wire now, per chain.
	writing map[chainKey]uint64
	// waiting holds the channel each waiting nonce sleeps on, per chain.
	waiting map[chainKey]map[uint64]chan struct{}
}

func newSequencer() *sequencer {
	return &sequencer{next: map[chainKey]uint64{}, active: map[chainKey]int{}, writing: map[chainKey]uint64{}, waiting: map[chainKey]map[uint64]chan struct{}{}}
}

// wait blocks until nonce is the chain's next. Every nonce above the chain's
// start (what was durable before this process charged it) is handed out by
// this process, charges are durable in nonce order before anyone waits here,
// and a failed commit fails every later charge of its chain too, so the nonce
// before this one is always on its way.
//
// Should that reasoning ever fail, a stalled chain would silence a peer for
// good, so after maxSequenceWait the frame goes out anyway (the receiver
// accepts the gap) and wait reports false.
func (s *sequencer) wait(k chainKey, nonce uint64, start func() uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active[k]++
	deadline := time.Now().Add(maxSequenceWait)
	for {
		next, ok := s.next[k]
		if !ok {
			next = start() + 1
			s.next[k] = next
		}
		// A lower nonce than expected means the ledger restarted the chain
		// from its durable state after a failed commit.
		if nonce <= next {
			s.writing[k] = nonce
			return true
		}
		if !time.Now().Before(deadline) {
			if w, ok := s.writing[k]; !ok || w != next {
				return false
			}
			// The frame before is being written: the peer is slow to
			// read, not the chain stalled. Going ahead would reorder.
			deadline = time.Now().Add(maxSequenceWait)
		}
		byNonce := s.waiting[k]
		if byNonce == nil {
			byNonce = map[uint64]chan struct{}{}
			s.waiting[k] = byNonce
		}
		ch := byNonce[nonce]
		if ch == nil {
			ch = make(chan struct{})
			byNonce[nonce] = ch
		}
		s.mu.Unlock()
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
		case <-timer.C:
		}
		timer.Stop()
		s.mu.Lock()
		if s.waiting[k][nonce] == ch {
			delete(s.waiting[k], nonce)
		}
	}
}

// done lets the chain's next nonce out.
func (s *sequencer) done(k chainKey, nonce uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next[k] = nonce + 1
	if s.writing[k] == nonce {
		delete(s.writing, k)
	}
	if ch, ok := s.waiting[k][nonce+1]; ok {
		close(ch)
		delete(s.waiting[k], nonce+1)
	}
	if s.active[k]--; s.active[k] == 0 {
		// Nobody is mid-chain: forget it unless it may continue. Epochs only
		// grow, so an older epoch's chain never continues.
		for o := range s.next {
			if o.context == k.context && o.peer == k.peer && o.epoch < k.epoch {
				delete(s.next, o)
			}
		}
		delete(s.active, k)
		delete(s.waiting, k)
	}
}

// onceFunc is fn made safe to call more than once (a charge retried after
// an earlier one's failure is queued again); nil stays nil.
func onceFunc(fn func()) func() {
	if fn == nil {
		return nil
	}
	return sync.OnceFunc(fn)
}
