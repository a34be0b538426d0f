package sync

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/sync/riblt"
	"github.com/aura-p2p/aura/internal/transport"
)

// Store is what reconciliation needs of the journal.
type Store interface {
	ReceiveBatch(ctx context.Context, from core.DeviceID, facts []*journal.SignedFact) ([]journal.ReceiveResult, error)
	Get(ctx context.Context, id core.FactID) (journal.StoredFact, error)
	Has(ctx context.Context, ns core.Namespace, id core.FactID) (bool, error)
	FactIDsWithPrefix(ctx context.Context, prefix string, limit int) ([]core.FactID, error)
	Range(ctx context.Context, ns core.Namespace, lo, hi journal.FactKey, fn func(journal.StoredFact) bool) error
	RangeSummary(ctx context.Context, ns core.Namespace, lo, hi journal.FactKey) (uint64, journal.Fingerprint, error)
	RangeSplit(ctx context.Context, ns core.Namespace, lo, hi journal.FactKey, k int) ([]journal.RangePart, error)
	RangeKeys(ctx context.Context, ns core.Namespace, lo, hi journal.FactKey, limit int) ([]journal.FactKey, bool, error)
	WithSetIndex(ctx context.Context, ns core.Namespace, name string, mk func() (journal.SetIndex, error), fn func(ix journal.SetIndex, count uint64, fp journal.Fingerprint) error) error
}

// Network is what reconciliation needs of the transport.
type Network interface {
	Handle(proto protocol.ID, h transport.Handler)
	Send(ctx context.Context, m transport.Message) error
	Self() core.DeviceID
	OnConnected(fn func(core.DeviceID))
	Misbehaved(d core.DeviceID, reason string, err error)
}

// Shared is a namespace this device reconciles with a peer: the context
// whose channel and budget carry the session, and the secret, held by the
// namespace's members only, that keys its sketch.
type Shared struct {
	Namespace core.Namespace
	Context   core.ContextID
	Secret    []byte
}

// Namespaces says what this device shares with whom.
type Namespaces interface {
	// SharedWith lists the namespaces this device and peer are both
	// members of, sorted by namespace.
	SharedWith(ctx context.Context, peer core.DeviceID) ([]Shared, error)
	// Peers lists the devices this device shares a namespace with.
	Peers(ctx context.Context) ([]core.DeviceID, error)
}

// Options tune the engine; zero values take the defaults.
type Options struct {
	// Interval between reconciliations with a random peer (default 30 s;
	// negative: only on connection and on demand).
	Interval time.Duration
	// Timeout is how long a session waits for the peer's next message
	// (default 15 s).
	Timeout time.Duration
	// CacheLen is the sketch's cached prefix (default 4,096 symbols).
	CacheLen int
	// MaxSketch bounds the symbols of one session; past it, ranges take
	// over (default 32,768: a difference of about 24,000 facts).
	MaxSketch int
	// MaxRounds bounds a session's round trips (default 256: a large
	// difference by ranges takes many, each message being bounded).
	MaxRounds int
	// MaxReconBytes bounds the reconciliation bytes (not facts) a session
	// takes from a peer (default 16 MiB).
	MaxReconBytes uint64
	// MaxSessions bounds concurrent sessions in all and per peer
	// (defaults 64 and 4).
	MaxSessions, MaxPeerSessions int
	// Observe, if set, hears of every session that ends, in either role
	// (metrics).
	Observe func(m Mode, failed bool)
	Rand    io.Reader
	Logger  *zap.Logger
	Clock   core.Clock
}

func (o Options) withDefaults() Options {
	if o.Interval == 0 {
		o.Interval = 30 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.CacheLen <= 0 {
		o.CacheLen = 4096
	}
	if o.MaxSketch <= 0 {
		o.MaxSketch = 1 << 15
	}
	if o.MaxRounds <= 0 {
		o.MaxRounds = 256
	}
	if o.MaxReconBytes == 0 {
		o.MaxReconBytes = 16 << 20
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 64
	}
	if o.MaxPeerSessions <= 0 {
		o.MaxPeerSessions = 4
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = core.SystemClock{}
	}
	return o
}

// Errors callers branch on.
var (
	// ErrNothingShared: the peer shares no namespace (or not the one asked
	// for) with this device.
	ErrNothingShared = fmt.Errorf("no namespace shared with that peer: %w", core.ErrNotFound)
	// ErrSessionFailed: a session ended without converging; the error says
	// why in its typed reason.
	ErrSessionFailed = fmt.Errorf("sync session failed: %w", core.ErrUnavailable)
)

// Typed reasons a session ends with.
const (
	reasonTimeout      = "timeout"
	reasonMalformed    = "malformed"
	reasonInconsistent = "inconsistent"
	reasonTooLong      = "too_many_rounds"
	reasonTooBig       = "too_many_bytes"
	reasonBusy         = "busy"
	reasonNotShared    = "not_shared"
	reasonUnreachable  = "unreachable"
	reasonBudget       = "budget"
	reasonLocal        = "local_error"
	reasonVersion      = "version"
	reasonProtocol     = "protocol"
	reasonCancelled    = "cancelled"
)

// Cost model: every sync message is charged one unit plus one per KiB of
// payload to its context's budget, so a bootstrap of 100,000 facts of
// 200 B (≈ 20,000 units) fits a contact's default budget (1 Mi units per
// period) and a peer flooding batches is cut off by it.
func costOf(payload int) uint64 { return 1 + uint64(payload)/1024 }

// Tuning of the protocol.
const (
	firstSymbols   = 2    // symbols in the open message: d = 1 decodes in one round trip
	symbolsPerMsg  = 1300 // ≈ 56 KiB of symbols
	idListMax      = 20   // a range this small is sent as its ids
	rangeFanout    = 16
	sketchIndex    = "sync/riblt"
	pushChunkFacts = 512
)

// Syncer reconciles the namespaces this device shares with its peers.
type Syncer struct {
	net Network
	st  Store
	nss Namespaces
	o   Options
	log *zap.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     stdsync.WaitGroup
	kicks  chan core.DeviceID

	mu       stdsync.Mutex
	sessions map[sessKey]*session
	perPeer  map[core.DeviceID]int
	active   map[activeKey]chan struct{} // initiator sessions running, closed when they end
	// responding: the peer's sessions this device answers, likewise.
	responding map[activeKey]chan struct{}
	kicked     map[core.DeviceID]bool // peers with a kick queued
	status     map[activeKey]*PeerStatus
	randMu     stdsync.Mutex
}

type sessKey struct {
	peer core.DeviceID
	id   sessionID
}

type activeKey struct {
	peer core.DeviceID
	ns   core.Namespace
}

// New registers the sync protocol and starts the background loop (periodic
// reconciliation and one on every connection). Close stops it.
func New(net Network, st Store, nss Namespaces, authz Allower, o Options) *Syncer {
	o = o.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Syncer{
		net: net, st: st, nss: nss, o: o, log: o.Logger,
		ctx: ctx, cancel: cancel, kicks: make(chan core.DeviceID, 64),
		sessions: map[sessKey]*session{}, perPeer: map[core.DeviceID]int{},
		active: map[activeKey]chan struct{}{}, responding: map[activeKey]chan struct{}{}, kicked: map[core.DeviceID]bool{}, status: map[activeKey]*PeerStatus{},
	}
	for _, t := range []string{TypeOpen, TypeSketch, TypeReply, TypeRange, TypeWant, TypeBatch, TypeEnd} {
		authz.Allow(t, core.ClassContact, core.ClassGroup)
	}
	net.Handle(ProtocolSync, s.receive)
	self := net.Self()
	net.OnConnected(func(d core.DeviceID) {
		// One side of a new connection starts: the lower device id, so
		// the two do not reconcile the same namespaces twice at once.
		if bytes.Compare(self[:], d[:]) < 0 {
			s.Kick(d)
		}
	})
	s.wg.Add(1)
	go s.loop()
	return s
}

// Close stops the background loop and every session.
func (s *Syncer) Close() {
	s.cancel()
	s.wg.Wait()
}

// Kick asks for a reconciliation with peer soon (a new connection, an
// announcement that arrived out of order).
func (s *Syncer) Kick(peer core.DeviceID) {
	s.mu.Lock()
	if s.kicked[peer] {
		s.mu.Unlock()
		return // one pending kick per peer: a connection over TCP and QUIC is one
	}
	s.kicked[peer] = true
	s.mu.Unlock()
	select {
	case s.kicks <- peer:
	default: // the loop is far behind: the timer covers it
		s.mu.Lock()
		delete(s.kicked, peer)
		s.mu.Unlock()
	}
}

func (s *Syncer) loop() {
	defer s.wg.Done()
	var tick <-chan time.Time
	if s.o.Interval > 0 {
		t := time.NewTicker(s.o.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		var peer core.DeviceID
		select {
		case <-s.ctx.Done():
			return
		case peer = <-s.kicks:
			s.mu.Lock()
			delete(s.kicked, peer)
			s.mu.Unlock()
		case <-tick:
			p, ok := s.randomPeer()
			if !ok {
				continue
			}
			peer = p
		}
		if _, err := s.SyncNow(s.ctx, peer, core.Namespace{}, nil); err != nil && s.ctx.Err() == nil {
			s.log.Debug("background reconciliation", zap.Stringer("peer", peer), zap.Error(err))
		}
	}
}

func (s *Syncer) randomPeer() (core.DeviceID, bool) {
	peers, err := s.nss.Peers(s.ctx)
	if err != nil || len(peers) == 0 {
		return core.DeviceID{}, false
	}
	var b [8]byte
	if s.o.Rand != nil {
		s.randMu.Lock()
		_, err = io.ReadFull(s.o.Rand, b[:])
		s.randMu.Unlock()
		if err != nil {
			return core.DeviceID{}, false
		}
	}
	return peers[binary.BigEndian.Uint64(b[:])%uint64(len(peers))], true
}

// SyncNow reconciles now: with peer (zero: every device this one shares a
// namespace with) over ns (zero: every namespace shared with that peer).
// progress, if set, hears of every step, from one goroutine at a time. It
// returns the final progress of each session; a failed session makes the
// error ErrSessionFailed.
func (s *Syncer) SyncNow(ctx context.Context, peer core.DeviceID, ns core.Namespace, progress func(Progress)) ([]Progress, error) {
	peers := []core.DeviceID{peer}
	if peer == (core.DeviceID{}) {
		ps, err := s.nss.Peers(ctx)
		if err != nil {
			return nil, err
		}
		if len(ps) == 0 {
			return nil, fmt.Errorf("no peer shares a namespace with this device: %w", ErrNothingShared)
		}
		peers = ps
	}
	var out []Progress
	var failed []string
	for _, p := range peers {
		shared, err := s.nss.SharedWith(ctx, p)
		if err != nil {
			return out, err
		}
		if ns != (core.Namespace{}) {
			shared = slices.DeleteFunc(shared, func(sh Shared) bool { return sh.Namespace != ns })
		}
		if len(shared) == 0 {
			if peer != (core.DeviceID{}) {
				return out, fmt.Errorf("%s: %w", p, ErrNothingShared)
			}
			continue
		}
		for _, sh := range shared {
			res := s.initiate(ctx, p, sh, progress)
			out = append(out, res)
			if res.Phase == PhaseFailed {
				failed = append(failed, fmt.Sprintf("%s: %s", p.String()[:12], res.Err))
			}
		}
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("%s: %w", joinShort(failed), ErrSessionFailed)
	}
	return out, ctx.Err()
}

func joinShort(s []string) string {
	if len(s) > 3 {
		return fmt.Sprintf("%s and %d more", strings.Join(s[:3], "; "), len(s)-3)
	}
	return strings.Join(s, "; ")
}

// initiate runs one session as its initiator, in the caller's goroutine.
// One session per peer and namespace at a time: a caller who finds one
// running (the timer's, a connection's, or the peer's own as responder here)
// waits for it and then runs its own, which has little or nothing left to
// do. When both devices open at the same moment, the lower device id's
// session goes on and the other is refused as busy; its initiator then waits
// for the winner's and tries again.
func (s *Syncer) initiate(ctx context.Context, peer core.DeviceID, sh Shared, progress func(Progress)) Progress {
	ak := activeKey{peer, sh.Namespace}
	deadline := time.Now().Add(s.o.Timeout)
	for attempt := 0; ; attempt++ {
		p, busy := s.initiateOnce(ctx, ak, sh, progress)
		if !busy || time.Now().After(deadline) {
			return p
		}
		// The winner's session is waited for inside initiateOnce; a
		// peer busy for another reason gets a growing pause.
		select {
		case <-time.After(min(time.Duration(25<<min(attempt, 5))*time.Millisecond, time.Second)):
		case <-ctx.Done():
			return p
		}
	}
}

func (s *Syncer) initiateOnce(ctx context.Context, ak activeKey, sh Shared, progress func(Progress)) (Progress, bool) {
	failed := func(reason string) Progress {
		return Progress{Peer: ak.peer, Namespace: sh.Namespace, Context: sh.Context, Phase: PhaseFailed, Err: reason}
	}
	s.mu.Lock()
	for {
		running := s.active[ak]
		if running == nil {
			running = s.responding[ak]
		}
		if running == nil {
			break
		}
		s.mu.Unlock()
		select {
		case <-running:
		case <-ctx.Done():
			return failed(reasonCancelled), false
		}
		s.mu.Lock()
	}
	var sid sessionID
	if err := s.newID(&sid); err != nil {
		s.mu.Unlock()
		return failed(reasonLocal), false
	}
	ss := s.newSessionLocked(sid, RoleInitiator, ak.peer, sh)
	if ss == nil {
		s.mu.Unlock()
		return failed(reasonBusy), false
	}
	finished := make(chan struct{})
	s.active[ak] = finished
	s.mu.Unlock()
	ss.progress = progress
	ss.run(ctx)
	s.mu.Lock()
	delete(s.active, ak)
	close(finished)
	s.mu.Unlock()
	return ss.p, ss.p.Err == reasonBusy
}

func (s *Syncer) newID(sid *sessionID) error {
	if s.o.Rand == nil {
		return fmt.Errorf("no randomness: %w", core.ErrInternal)
	}
	s.randMu.Lock()
	defer s.randMu.Unlock()
	_, err := io.ReadFull(s.o.Rand, sid[:])
	return err
}

// newSessionLocked registers a session within the bounds, or returns nil.
func (s *Syncer) newSessionLocked(sid sessionID, role Role, peer core.DeviceID, sh Shared) *session {
	k := sessKey{peer, sid}
	if s.sessions[k] != nil || len(s.sessions) >= s.o.MaxSessions || s.perPeer[peer] >= s.o.MaxPeerSessions {
		return nil
	}
	ss := &session{
		s: s, id: sid, role: role, peer: peer, sh: sh,
		key:   riblt.DeriveKey(sh.Secret),
		inbox: make(chan transport.Incoming, 16), done: make(chan struct{}),
		pushed: make(chan error, 16),
		p:      Progress{Peer: peer, Namespace: sh.Namespace, Context: sh.Context, Phase: PhaseReconciling},
	}
	s.sessions[k] = ss
	s.perPeer[peer]++
	return ss
}

func (s *Syncer) forget(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessKey{ss.peer, ss.id}
	if s.sessions[k] == ss {
		delete(s.sessions, k)
		if s.perPeer[ss.peer]--; s.perPeer[ss.peer] <= 0 {
			delete(s.perPeer, ss.peer)
		}
	}
}

// receive routes a sync message to its session, starting a responder
// session on an open. It runs on the peer's stream goroutine, so a full
// session inbox holds the peer's next frames back: backpressure.
func (s *Syncer) receive(ctx context.Context, in transport.Incoming) {
	sid, body, err := parseHeader(in.Payload)
	if err != nil {
		if errors.Is(err, core.ErrFailedPrecondition) {
			// Another wire version: say so rather than go silent.
			s.sendEnd(ctx, in.From, in.Context, sid, reasonVersion)
			return
		}
		s.net.Misbehaved(in.From, "sync_malformed", err)
		return
	}
	if in.Type == TypeOpen {
		// Read before anything decides: an open that would be answered
		// "busy" or "not shared" is still counted when it is garbage.
		if _, err := decodeOpen(body); err != nil {
			s.net.Misbehaved(in.From, "sync_malformed", err)
			return
		}
	}
	// What an open is about is looked up before the lock: it reads the
	// journal and unwraps the context's secret.
	var sh Shared
	if in.Type == TypeOpen {
		var ok bool
		if sh, ok = s.sharedFor(ctx, in.From, in.Context); !ok {
			s.sendEnd(ctx, in.From, in.Context, sid, reasonNotShared)
			return
		}
	}
	s.mu.Lock()
	ss := s.sessions[sessKey{in.From, sid}]
	ak := activeKey{in.From, sh.Namespace}
	if ss == nil && in.Type == TypeOpen {
		if self := s.net.Self(); s.active[ak] != nil && bytes.Compare(self[:], in.From[:]) < 0 {
			// Both opened at once: this device's session (the lower id's)
			// goes on; the peer's initiator waits for it and retries.
			s.mu.Unlock()
			s.sendEnd(ctx, in.From, in.Context, sid, reasonBusy)
			return
		}
		if ss = s.newSessionLocked(sid, RoleResponder, in.From, sh); ss == nil {
			s.mu.Unlock()
			s.sendEnd(ctx, in.From, in.Context, sid, reasonBusy)
			return
		}
		// The responder's session counts as the pair's running session
		// too: this device's own timer or connection waits for it rather
		// than reconcile (and send) the same difference beside it.
		var mine chan struct{}
		if s.responding[ak] == nil {
			mine = make(chan struct{})
			s.responding[ak] = mine
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ss.run(s.ctx)
			if mine != nil {
				s.mu.Lock()
				delete(s.responding, ak)
				close(mine)
				s.mu.Unlock()
			}
		}()
	}
	s.mu.Unlock()
	if ss == nil {
		if in.Type == TypeBatch {
			// Facts that arrive after their session ended are as welcome
			// as an announcement: each is checked like any other.
			s.ingestLate(ctx, in)
		}
		return
	}
	if in.Context != ss.sh.Context {
		s.net.Misbehaved(in.From, "sync_malformed", fmt.Errorf("session %x moved context", sid))
		return
	}
	select {
	case ss.inbox <- in:
	case <-ss.done:
	case <-ctx.Done():
	}
}

// sharedFor finds the shared namespace a peer's open is about.
func (s *Syncer) sharedFor(ctx context.Context, peer core.DeviceID, c core.ContextID) (Shared, bool) {
	shared, err := s.nss.SharedWith(ctx, peer)
	if err != nil {
		return Shared{}, false
	}
	for _, sh := range shared {
		if sh.Context == c {
			return sh, true
		}
	}
	return Shared{}, false
}

func (s *Syncer) sendEnd(ctx context.Context, to core.DeviceID, c core.ContextID, sid sessionID, reason string) {
	p := encodeEnd(sid, reason)
	_ = s.net.Send(ctx, transport.Message{Protocol: ProtocolSync, Context: c, To: to, Type: TypeEnd, Cost: costOf(len(p)), Payload: p})
}

func (s *Syncer) ingestLate(ctx context.Context, in transport.Incoming) {
	_, body, _ := parseHeader(in.Payload)
	m, err := decodeBatch(body)
	if err != nil {
		s.net.Misbehaved(in.From, "sync_malformed", err)
		return
	}
	st := s.ingest(ctx, in.From, core.ContextNamespace(in.Context), m.Facts)
	s.record(activeKey{in.From, core.ContextNamespace(in.Context)}, in.Context, func(ps *PeerStatus) {
		ps.FactsIn += st.accepted
		ps.Refused += st.refused
		ps.BytesIn += uint64(len(in.Payload))
	})
}

type ingestStats struct {
	accepted, refused uint64
}

// ingest hands a peer's facts to the journal, which verifies them in
// parallel and stores them in group commits, and waits for the outcome.
func (s *Syncer) ingest(ctx context.Context, from core.DeviceID, ns core.Namespace, facts []*journal.SignedFact) ingestStats {
	st, mine := s.ownFacts(from, ns, facts)
	res, err := s.st.ReceiveBatch(ctx, from, mine)
	s.tally(ctx, from, mine, res, err, &st)
	return st
}

// ownFacts drops, and counts against the sender, facts outside the
// namespace of the message that carried them.
func (s *Syncer) ownFacts(from core.DeviceID, ns core.Namespace, facts []*journal.SignedFact) (ingestStats, []*journal.SignedFact) {
	var st ingestStats
	mine := facts[:0:0]
	for _, f := range facts {
		if f.Namespace != ns {
			st.refused++
			s.net.Misbehaved(from, "sync_foreign_fact", fmt.Errorf("fact %s is not in the session's namespace", f.ID))
			continue
		}
		mine = append(mine, f)
	}
	return st, mine
}

// tally counts what the journal made of a peer's facts; a forged or
// invalid fact counts against the sender.
func (s *Syncer) tally(ctx context.Context, from core.DeviceID, facts []*journal.SignedFact, res []journal.ReceiveResult, err error, st *ingestStats) {
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("facts from a peer not stored", zap.Stringer("peer", from), zap.Int("facts", len(facts)), zap.Error(err))
		}
		return
	}
	for i, r := range res {
		switch {
		case r.Err == nil:
			if !r.Duplicate && !r.Orphaned {
				st.accepted++
			}
		case errors.Is(r.Err, core.ErrInvalidArgument), errors.Is(r.Err, core.ErrPermissionDenied):
			st.refused++
			reason := "sync_refused_fact"
			if errors.Is(r.Err, journal.ErrBadSignature) {
				reason = "sync_forged_fact"
			}
			s.net.Misbehaved(from, reason, r.Err)
		default:
			s.log.Warn("fact from a peer not stored", zap.Stringer("peer", from), zap.Stringer("fact", facts[i].ID), zap.Error(r.Err))
		}
	}
}

// pipelined is what a Store may offer to keep several of a peer's batches
// verifying while earlier ones commit (the journal does).
type pipelined interface {
	NewReceiver(from core.DeviceID) *journal.Receiver
}

// maxInFlight is how many of a peer's batches a session keeps in the
// journal's pipeline before it waits for the oldest. The journal's writer
// commits whatever is queued when it starts a commit, so the deeper the
// pipeline, the more facts each commit's two fsyncs carry: in
// BenchmarkSyncBootstrap 4 gave 14.0-14.7k facts/s, 16 gave 17.1-18.4k and
// 32 gave 18.4-20.5k (the receiver's peak RSS 200, 245 and 305 MiB), on the
// same machine within minutes. At most 32 × 64 KiB of a peer's frames wait.
const maxInFlight = 32

// record updates the status of (peer, namespace).
func (s *Syncer) record(k activeKey, c core.ContextID, fn func(*PeerStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.status[k]
	if ps == nil {
		ps = &PeerStatus{Peer: k.peer, Namespace: k.ns, Context: c}
		s.status[k] = ps
	}
	fn(ps)
}

// Status lists, per peer and namespace, the last reconciliation and the
// totals since start, sorted by peer then namespace.
func (s *Syncer) Status() []PeerStatus {
	s.mu.Lock()
	out := make([]PeerStatus, 0, len(s.status))
	for _, ps := range s.status {
		out = append(out, *ps)
	}
	s.mu.Unlock()
	slices.SortFunc(out, comparePeerStatus)
	return out
}

// Overview is Status plus a row, never synced, for every namespace this
// device shares with a peer and has not reconciled with it yet: what an
// operator names peers and namespaces from.
func (s *Syncer) Overview(ctx context.Context) ([]PeerStatus, error) {
	peers, err := s.nss.Peers(ctx)
	if err != nil {
		return nil, err
	}
	out := s.Status()
	have := map[activeKey]bool{}
	for _, ps := range out {
		have[activeKey{ps.Peer, ps.Namespace}] = true
	}
	for _, p := range peers {
		shared, err := s.nss.SharedWith(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, sh := range shared {
			if !have[activeKey{p, sh.Namespace}] {
				out = append(out, PeerStatus{Peer: p, Namespace: sh.Namespace, Context: sh.Context})
			}
		}
	}
	slices.SortFunc(out, comparePeerStatus)
	return out, nil
}

func comparePeerStatus(a, b PeerStatus) int {
	if c := bytes.Compare(a.Peer[:], b.Peer[:]); c != 0 {
		return c
	}
	if a.Namespace.Kind != b.Namespace.Kind {
		return int(a.Namespace.Kind) - int(b.Namespace.Kind)
	}
	return bytes.Compare(a.Namespace.ID[:], b.Namespace.ID[:])
}
