package choreo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	bbolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/transport"
)

// The session runtime drives one device's roles in sessions of projected
// protocols over the transport. Each session runs in its own goroutine that
// owns the role's Machine: before a send it asks the handler for the payload
// (and, at a decision, for the branch) and hands the message to
// Transport.Send with the message's annotations, so the capability check, the
// flow charge and the journal facts happen in the guard chain and commit
// together or not at all; after a receive it checks the message against the
// machine before the handler sees it. Anything the machine does not allow, a
// sender that does not play the role it claims, a guard denial, a timeout or
// a failed send ends the session with an AbortReason, and the device that
// noticed tells every other participant with an abort message, so all ends
// agree on the reason.
//
// The transport calls its handler on the goroutine that reads the sender's
// stream; the runtime only queues there, so a slow handler never stalls a
// peer's other traffic, and the per-sender order the transport guarantees is
// the order a session sees.

// Transport is what the runtime needs from the network edge.
type Transport interface {
	Self() core.DeviceID
	Send(ctx context.Context, m transport.Message) error
	Handle(proto protocol.ID, h transport.Handler)
}

// Journal is what the runtime needs from the fact store: signing the facts a
// send commits, and its own extension bucket for session records.
type Journal interface {
	SignLocal(signer journal.Signer, d journal.Draft) (*journal.SignedFact, error)
	Commit(ctx context.Context, t journal.Txn) ([]journal.Committed, error)
	ViewExt(ctx context.Context, owner string, fn func(b *bbolt.Bucket) error) error
}

// Allower registers message types with the capability step.
type Allower interface {
	Allow(msgType string, classes ...core.Class)
}

// Info is what a handler learns about the session it serves. Roles is
// shared with the runtime and must not be modified.
type Info struct {
	ID       SessionID
	Protocol string
	Role     string
	Roles    map[string]core.DeviceID
	Context  core.ContextID
	Choices  []string
	// Step counts the messages this role sent and received so far.
	Step int
	// Decisions counts the choices this role has decided so far.
	Decisions int
}

// Handler gives a role's sends their payloads and consumes its receives. The
// runtime calls it from one goroutine per session, in protocol order; a
// returned error aborts the session with AbortHandler.
type Handler interface {
	// Choose picks the branch of a choice this role decides: one of the
	// Branch labels of branches.
	Choose(ctx context.Context, s Info, branches []Action) (string, error)
	// Send returns the payload of message a.
	Send(ctx context.Context, s Info, a Action) ([]byte, error)
	// Receive consumes the payload of message a.
	Receive(ctx context.Context, s Info, a Action, payload []byte) error
}

// Options configure a Runtime. Transport, Journal, Signer, Namespace and
// Protocols are required.
type Options struct {
	Transport Transport
	Journal   Journal
	// Signer signs the facts sends commit, into Namespace (this device's
	// authority namespace).
	Signer    journal.Signer
	Namespace core.Namespace
	// Authorizer, if set, is told the runtime's message types for link,
	// contact and group contexts.
	Authorizer Allower
	// Protocols the runtime can run: the embedded ones, in aurad.
	Protocols []*Projection
	Clock     core.Clock
	Rand      io.Reader
	Logger    *zap.Logger
	// StepTimeout bounds each step: waiting for a message, a handler call,
	// a send (default 30s).
	StepTimeout time.Duration
	// History is how many finished sessions are kept, in memory and in the
	// journal (default 1000).
	History int
}

// Defaults.
const (
	DefaultStepTimeout = 30 * time.Second
	DefaultHistory     = 1000
)

// Internal limits.
const (
	maxInbox       = 1024 // queued messages per session before it is cut off
	abortTimeout   = 2 * time.Second
	maxTombstones  = 1024
	maxReplies     = 16 // concurrent out-of-session abort replies
	controlCost    = 1  // a join pays like a message
	abortCost      = 0  // an abort must get through an exhausted budget
	bucketSessions = "choreo.sessions"
)

type protoEntry struct {
	p    *Projection
	hash core.Hash
}

// Runtime runs sessions. Safe for concurrent use.
type Runtime struct {
	o      Options
	self   core.DeviceID
	protos map[string]*protoEntry

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	reply  chan struct{} // semaphore of out-of-session replies

	mu       sync.Mutex
	closed   bool
	handlers map[string]Handler // protocol "/" role; role "" for any
	sessions map[SessionID]*session
	finished []SessionID // in order of ending, for the history bound
	tombs    map[SessionID]struct{}
	tombList []SessionID
	seq      uint64 // persistence key of the last session created
	watches  map[*Watch]struct{}
}

// ProtocolHash names a protocol's exact meaning: its canonical text and every
// role's local type (which covers protocols it includes with do). Two devices
// run a session only when their hashes agree.
func ProtocolHash(p *Projection) core.Hash {
	var b strings.Builder
	FormatProtocol(&b, p.Protocol)
	for _, r := range p.Roles {
		b.WriteString("\x00")
		b.WriteString(r.Role)
		b.WriteString("\x00")
		b.WriteString(LocalString(r.Type))
	}
	return core.TaggedHash("aura/choreo/protocol/v1", []byte(b.String()))
}

// New starts a runtime: it loads the session records, marks those a previous
// run left running as aborted (AbortRestarted), and registers the session
// protocol with the transport.
func New(ctx context.Context, o Options) (*Runtime, error) {
	if o.Transport == nil || o.Journal == nil || o.Signer == nil || !o.Namespace.Valid() {
		return nil, fmt.Errorf("choreo runtime: transport, journal, signer and namespace are required: %w", core.ErrInvalidArgument)
	}
	if o.Clock == nil {
		o.Clock = core.SystemClock{}
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = DefaultStepTimeout
	}
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	rctx, cancel := context.WithCancel(context.Background())
	rt := &Runtime{
		o: o, self: o.Transport.Self(), protos: map[string]*protoEntry{},
		ctx: rctx, cancel: cancel, reply: make(chan struct{}, maxReplies),
		handlers: map[string]Handler{}, sessions: map[SessionID]*session{},
		tombs: map[SessionID]struct{}{}, watches: map[*Watch]struct{}{},
	}
	for _, p := range o.Protocols {
		name := p.Protocol.Name
		if _, dup := rt.protos[name]; dup {
			cancel()
			return nil, fmt.Errorf("protocol %s given twice: %w", name, core.ErrInvalidArgument)
		}
		rt.protos[name] = &protoEntry{p: p, hash: ProtocolHash(p)}
	}
	if err := rt.load(ctx); err != nil {
		cancel()
		return nil, err
	}
	if o.Authorizer != nil {
		for _, t := range MessageTypes() {
			o.Authorizer.Allow(t, core.ClassLink, core.ClassContact, core.ClassGroup)
		}
	}
	o.Transport.Handle(ProtocolSession, rt.receive)
	return rt, nil
}

// Register makes h the handler of role in protocol; role "" covers every
// role. A device joins a session only for a role it has a handler for.
func (rt *Runtime) Register(protocolName, role string, h Handler) error {
	pe, ok := rt.protos[protocolName]
	if !ok {
		return fmt.Errorf("protocol %s: %w", protocolName, ErrUnknown)
	}
	if role != "" {
		if _, err := pe.p.Local(role); err != nil {
			return err
		}
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.handlers[protocolName+"/"+role] = h
	return nil
}

func (rt *Runtime) handlerFor(protocolName, role string) Handler {
	if h := rt.handlers[protocolName+"/"+role]; h != nil {
		return h
	}
	return rt.handlers[protocolName+"/"]
}

// Protocols lists the protocols the runtime knows, by name.
func (rt *Runtime) Protocols() []string {
	out := make([]string, 0, len(rt.protos))
	for n := range rt.protos {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// StartOptions are the starter's choices for a session.
type StartOptions struct {
	// Context to charge every message to; zero means each pair of devices
	// uses its link context. The authorizer decides membership.
	Context core.ContextID
	// Choices are passed to every participant's handler (the relay handler
	// takes its branches from them, in order).
	Choices []string
}

// Start begins a session of protocolName with roles assigned to devices; this
// device must play exactly one of them. It returns once the session is
// recorded and running; Wait follows it to the end.
func (rt *Runtime) Start(ctx context.Context, protocolName string, roles map[string]core.DeviceID, o StartOptions) (Session, error) {
	pe, ok := rt.protos[protocolName]
	if !ok {
		return Session{}, fmt.Errorf("protocol %s: %w", protocolName, ErrUnknown)
	}
	if len(o.Choices) > maxChoices {
		return Session{}, fmt.Errorf("%d choices, at most %d: %w", len(o.Choices), maxChoices, core.ErrInvalidArgument)
	}
	for _, c := range o.Choices {
		if c == "" || len(c) > maxNameLen {
			return Session{}, fmt.Errorf("choice %q: %w", c, core.ErrInvalidArgument)
		}
	}
	hdr := &header{Protocol: protocolName, Hash: pe.hash, Context: o.Context, Roles: roles, Choices: o.Choices}
	role, err := checkRoles(pe.p, hdr.Roles, rt.self)
	if err != nil {
		return Session{}, err
	}
	var id SessionID
	if _, err := io.ReadFull(rt.o.Rand, id[:]); err != nil {
		return Session{}, fmt.Errorf("session id: %w", err)
	}
	rt.mu.Lock()
	h := rt.handlerFor(protocolName, role)
	rt.mu.Unlock()
	if h == nil {
		return Session{}, fmt.Errorf("no handler for role %s of %s on this device: %w", role, protocolName, core.ErrFailedPrecondition)
	}
	s, err := rt.newSession(id, hdr, pe, role, h, true)
	if err != nil {
		return Session{}, err
	}
	// Recorded as running before anything is sent, so a crash from here on
	// is found by the next start.
	if err := rt.persist(ctx, s); err != nil {
		rt.drop(s)
		return Session{}, fmt.Errorf("record session: %w", err)
	}
	if !rt.launch(s) {
		return Session{}, fmt.Errorf("session runtime stopped: %w", core.ErrUnavailable)
	}
	return rt.snapshot(s, true), nil
}

// checkRoles verifies a role map against a protocol: every role assigned,
// nothing else, distinct devices. It returns the role self plays ("" if none
// and self is zero).
func checkRoles(p *Projection, roles map[string]core.DeviceID, self core.DeviceID) (string, error) {
	if len(roles) != len(p.Roles) {
		return "", fmt.Errorf("protocol %s has roles %s, %d assigned: %w", p.Protocol.Name, strings.Join(p.Protocol.RoleNames(), ", "), len(roles), core.ErrInvalidArgument)
	}
	seen := map[core.DeviceID]string{}
	mine := ""
	for _, r := range p.Roles {
		d, ok := roles[r.Role]
		if !ok {
			return "", fmt.Errorf("role %s of %s is not assigned: %w", r.Role, p.Protocol.Name, core.ErrInvalidArgument)
		}
		if d == (core.DeviceID{}) {
			return "", fmt.Errorf("role %s: no device: %w", r.Role, core.ErrInvalidArgument)
		}
		if other, dup := seen[d]; dup {
			return "", fmt.Errorf("roles %s and %s on the same device %s: %w", other, r.Role, d, core.ErrInvalidArgument)
		}
		seen[d] = r.Role
		if d == self {
			mine = r.Role
		}
	}
	if mine == "" {
		return "", fmt.Errorf("this device plays no role of %s: %w", p.Protocol.Name, core.ErrInvalidArgument)
	}
	return mine, nil
}

// Wait blocks until the session ends or ctx does, and returns its final
// snapshot; an aborted session is not an error here (Session.Reason says why).
func (rt *Runtime) Wait(ctx context.Context, id SessionID) (Session, error) {
	rt.mu.Lock()
	s := rt.sessions[id]
	rt.mu.Unlock()
	if s == nil {
		return Session{}, fmt.Errorf("session %s: %w", id, core.ErrNotFound)
	}
	select {
	case <-s.done:
		return rt.snapshot(s, true), nil
	case <-ctx.Done():
		return Session{}, ctx.Err()
	}
}

// Run starts a session and waits for it; cancelling ctx aborts it
// (AbortCancelled). The error is the session's AbortReason if it aborted.
func (rt *Runtime) Run(ctx context.Context, protocolName string, roles map[string]core.DeviceID, o StartOptions) (Session, error) {
	s, err := rt.Start(ctx, protocolName, roles, o)
	if err != nil {
		return s, err
	}
	final, err := rt.Wait(ctx, s.ID)
	if err != nil {
		rt.Abort(s.ID, "cancelled by the caller: "+err.Error())
		final, _ = rt.Wait(context.Background(), s.ID)
	}
	if final.Reason != nil {
		return final, final.Reason
	}
	return final, nil
}

// Abort ends a running session on this device (AbortCancelled) and tells
// the other participants.
func (rt *Runtime) Abort(id SessionID, detail string) error {
	rt.mu.Lock()
	s := rt.sessions[id]
	rt.mu.Unlock()
	if s == nil {
		return fmt.Errorf("session %s: %w", id, core.ErrNotFound)
	}
	s.cancel(&AbortReason{Code: AbortCancelled, By: s.info.Role, Detail: detail})
	return nil
}

// Get returns a snapshot of a session, with its step log.
func (rt *Runtime) Get(id SessionID) (Session, error) {
	rt.mu.Lock()
	s := rt.sessions[id]
	rt.mu.Unlock()
	if s == nil {
		return Session{}, fmt.Errorf("session %s: %w", id, core.ErrNotFound)
	}
	return rt.snapshot(s, true), nil
}

// List returns snapshots of the sessions this device knows, newest first,
// without their step logs.
func (rt *Runtime) List() []Session {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := make([]Session, 0, len(rt.sessions))
	keys := make([]uint64, 0, len(rt.sessions))
	byKey := map[uint64]*session{}
	for _, s := range rt.sessions {
		keys = append(keys, s.key)
		byKey[s.key] = s
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] > keys[j] })
	for _, k := range keys {
		c := byKey[k].snap.clone()
		c.Log = nil
		out = append(out, c)
	}
	return out
}

func (rt *Runtime) snapshot(s *session, withLog bool) Session {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	c := s.snap.clone()
	if !withLog {
		c.Log = nil
	}
	return c
}

// Close aborts the running sessions (AbortShutdown), telling their peers,
// records them, and stops. Call it before the transport and journal close.
func (rt *Runtime) Close() error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	rt.mu.Unlock()
	rt.cancel()
	rt.wg.Wait()
	rt.mu.Lock()
	for w := range rt.watches {
		w.end(nil)
	}
	rt.watches = map[*Watch]struct{}{}
	rt.mu.Unlock()
	return nil
}

// newSession builds and registers a session (not yet running).
func (rt *Runtime) newSession(id SessionID, hdr *header, pe *protoEntry, role string, h Handler, initiator bool) (*session, error) {
	m, err := pe.p.Machine(role)
	if err != nil {
		return nil, err
	}
	now := rt.o.Clock.Now()
	s := &session{
		rt: rt, hdr: hdr, pe: pe, m: m, handler: h,
		info: Info{ID: id, Protocol: hdr.Protocol, Role: role, Roles: hdr.Roles, Context: hdr.Context, Choices: hdr.Choices},
		told: map[core.DeviceID]bool{},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	s.snap = Session{
		ID: id, Protocol: hdr.Protocol, Hash: hdr.Hash, Role: role, Roles: hdr.Roles, Context: hdr.Context,
		Choices: hdr.Choices, Initiator: initiator, State: StateRunning, Started: now, Updated: now,
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, fmt.Errorf("session runtime stopped: %w", core.ErrUnavailable)
	}
	if _, dup := rt.sessions[id]; dup {
		return nil, fmt.Errorf("session %s: %w", id, core.ErrAlreadyExists)
	}
	rt.seq++
	s.key = rt.seq
	s.ctx, s.cancel = context.WithCancelCause(rt.ctx)
	rt.sessions[id] = s
	rt.publishLocked(s)
	return s, nil
}

func (rt *Runtime) drop(s *session) {
	rt.mu.Lock()
	delete(rt.sessions, s.info.ID)
	rt.mu.Unlock()
	s.cancel(nil)
}

// launch starts the session's goroutine unless the runtime is closing.
func (rt *Runtime) launch(s *session) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		delete(rt.sessions, s.info.ID)
		s.cancel(nil)
		return false
	}
	rt.wg.Add(1)
	go s.run()
	return true
}

// contextFor is the context of messages between this device and peer.
func (s *session) contextFor(peer core.DeviceID) core.ContextID {
	if s.hdr.Context != (core.ContextID{}) {
		return s.hdr.Context
	}
	return core.LinkContext(s.rt.self, peer)
}

// inbound is a received frame waiting for its session.
type inbound struct {
	typ  string
	from core.DeviceID
	ctx  core.ContextID
	f    *frame
}

// session is the runtime's state of one session. Fields below the line are
// owned by the session goroutine; snap is guarded by rt.mu.
type session struct {
	rt      *Runtime
	key     uint64
	hdr     *header
	pe      *protoEntry
	handler Handler
	ctx     context.Context
	cancel  context.CancelCauseFunc
	done    chan struct{}

	qmu   sync.Mutex
	queue []inbound
	wake  chan struct{}

	snap Session

	m    *Machine
	info Info
	told map[core.DeviceID]bool
}

func (s *session) enqueue(in inbound) {
	s.qmu.Lock()
	if len(s.queue) >= maxInbox {
		s.qmu.Unlock()
		s.cancel(&AbortReason{Code: AbortOverload, By: s.info.Role, Detail: fmt.Sprintf("more than %d messages queued", maxInbox)})
		return
	}
	s.queue = append(s.queue, in)
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) pop() (inbound, bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.queue) == 0 {
		return inbound{}, false
	}
	in := s.queue[0]
	s.queue[0] = inbound{}
	s.queue = s.queue[1:]
	return in, true
}

func (s *session) run() {
	defer s.rt.wg.Done()
	err := s.loop()
	s.finish(err)
}

func (s *session) loop() error {
	if !s.snap.Initiator {
		if err := s.rt.persist(s.ctx, s); err != nil && s.ctx.Err() == nil {
			s.rt.o.Logger.Warn("recording joined session", zap.Stringer("session", s.info.ID), zap.Error(err))
		}
	} else if err := s.sendJoins(); err != nil {
		return err
	}
	for !s.m.Done() {
		if err := s.ctx.Err(); err != nil {
			return context.Cause(s.ctx)
		}
		next := s.m.Next()
		if len(next) == 0 {
			return &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: "local type is stuck"}
		}
		var err error
		if next[0].Kind == ActSend {
			err = s.send(next)
		} else {
			err = s.recv()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sendJoins tells the roles whose part begins with a send that the session
// exists: nobody would otherwise send them the header.
func (s *session) sendJoins() error {
	for _, r := range s.pe.p.Roles {
		if r.Role == s.info.Role {
			continue
		}
		m := NewMachine(r.Type)
		next := m.Next()
		if len(next) == 0 || next[0].Kind != ActSend {
			continue
		}
		dev := s.hdr.Roles[r.Role]
		f := frame{Session: s.info.ID, From: s.info.Role, To: r.Role, Header: s.hdr}
		if err := s.transmit(dev, TypeJoin, "", controlCost, nil, &f); err != nil {
			return err
		}
	}
	return nil
}

// stepContext bounds one step by the step timeout.
func (s *session) stepContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.rt.o.StepTimeout)
}

// transmit sends one frame through the guard chain, adding the header if dev
// has not heard of the session yet, and turns failures into abort reasons.
func (s *session) transmit(dev core.DeviceID, typ, capability string, cost uint64, facts []*journal.SignedFact, f *frame) error {
	if !s.told[dev] && f.Header == nil {
		f.Header = s.hdr
	}
	ctx, cancel := s.stepContext()
	defer cancel()
	err := s.rt.o.Transport.Send(ctx, transport.Message{
		Protocol: ProtocolSession, Context: s.contextFor(dev), To: dev, Type: typ,
		Capability: capability, Cost: cost, Facts: facts, Payload: f.encode(),
	})
	if err != nil {
		return s.sendFailure(ctx, f.To, err)
	}
	s.told[dev] = true
	return nil
}

// sendFailure classifies a failed send.
func (s *session) sendFailure(ctx context.Context, to string, err error) error {
	if s.ctx.Err() != nil {
		return context.Cause(s.ctx)
	}
	r := &AbortReason{By: s.info.Role, Detail: fmt.Sprintf("send to %s: %v", to, err)}
	switch {
	case errors.Is(err, core.ErrResourceExhausted):
		r.Code = AbortBudget
	case errors.Is(err, core.ErrPermissionDenied), errors.Is(err, core.ErrNotFound):
		r.Code = AbortGuardDenied
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		r.Code = AbortTimeout
	case errors.Is(err, core.ErrInvalidArgument):
		r.Code = AbortHandler
	default:
		r.Code = AbortUnreachable
	}
	return r
}

func (s *session) handlerFailure(what string, err error) error {
	if s.ctx.Err() != nil {
		return context.Cause(s.ctx)
	}
	code := AbortHandler
	if errors.Is(err, context.DeadlineExceeded) {
		code = AbortTimeout
	}
	return &AbortReason{Code: code, By: s.info.Role, Detail: what + ": " + err.Error()}
}

func (s *session) send(next []Action) error {
	a := next[0]
	if a.Branch != "" {
		ctx, cancel := s.stepContext()
		label, err := s.handler.Choose(ctx, s.info, next)
		cancel()
		if err != nil {
			return s.handlerFailure("choose", err)
		}
		found := false
		for _, n := range next {
			if n.Branch == label {
				a, found = n, true
				break
			}
		}
		if !found {
			return &AbortReason{Code: AbortHandler, By: s.info.Role, Detail: fmt.Sprintf("handler chose %q, not a branch here", label)}
		}
		s.info.Decisions++
	}
	ctx, cancel := s.stepContext()
	payload, err := s.handler.Send(ctx, s.info, a)
	cancel()
	if err != nil {
		return s.handlerFailure("send "+a.Label, err)
	}
	dev := s.hdr.Roles[a.Peer]
	step := uint64(s.info.Step + 1)
	var facts []*journal.SignedFact
	if a.Ann.JournalFacts != "" {
		sf := SessionFact{Session: s.info.ID, Protocol: s.info.Protocol, Fact: a.Ann.JournalFacts, Label: a.Label, Role: s.info.Role, Step: step}
		fact, err := s.rt.o.Journal.SignLocal(s.rt.o.Signer, journal.Draft{Namespace: s.rt.o.Namespace, TypeID: TypeFact, Payload: sf.Encode()})
		if err != nil {
			return &AbortReason{Code: AbortHandler, By: s.info.Role, Detail: "journal fact " + a.Ann.JournalFacts + ": " + err.Error()}
		}
		facts = []*journal.SignedFact{fact}
	}
	f := frame{Session: s.info.ID, Label: a.Label, From: s.info.Role, To: a.Peer, Step: step, Payload: payload}
	if err := s.transmit(dev, TypeMsg, a.Ann.GuardCapability, uint64(a.Ann.FlowCost), facts, &f); err != nil {
		return err
	}
	if err := s.m.Step(a); err != nil {
		// Next offered a; the machine refusing it is a bug of ours.
		s.rt.o.Logger.Error("machine refused its own next step", zap.Error(err))
		return &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: err.Error()}
	}
	s.stepped(StepSent, a, len(payload))
	return nil
}

func (s *session) recv() error {
	from, _ := s.m.Receiving()
	timer := time.NewTimer(s.rt.o.StepTimeout)
	defer timer.Stop()
	for {
		in, ok := s.pop()
		if !ok {
			select {
			case <-s.ctx.Done():
				return context.Cause(s.ctx)
			case <-timer.C:
				return &AbortReason{Code: AbortTimeout, By: s.info.Role, Detail: fmt.Sprintf("no message from %s within %s", from, s.rt.o.StepTimeout)}
			case <-s.wake:
			}
			continue
		}
		done, err := s.accept(in)
		if err != nil || done {
			return err
		}
	}
}

// accept checks one received frame against the session and the machine. It
// reports whether the frame was the awaited message.
func (s *session) accept(in inbound) (bool, error) {
	f := in.f
	if f.Header != nil && !f.Header.equal(s.hdr) {
		return false, &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: "a message carries a different session header"}
	}
	if s.hdr.Roles[f.From] != in.from || in.ctx != s.contextFor(in.from) {
		return false, &AbortReason{Code: AbortWrongSender, By: s.info.Role, Detail: fmt.Sprintf("%s from device %s, which does not play %s here", f.Label, in.from, f.From)}
	}
	s.told[in.from] = true
	if in.typ == TypeJoin {
		// The join that made us, or a duplicate: nothing to do.
		return false, nil
	}
	if f.To != s.info.Role {
		return false, &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: fmt.Sprintf("%s addressed to role %s", f.Label, f.To)}
	}
	a, ok := s.m.Lookup(Action{Kind: ActRecv, Peer: f.From, Label: f.Label})
	if !ok {
		v := &ViolationError{Role: s.info.Role, Got: Action{Kind: ActRecv, Peer: f.From, Label: f.Label}, Expected: s.m.Next()}
		return false, &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: v.Error()}
	}
	ctx, cancel := s.stepContext()
	err := s.handler.Receive(ctx, s.info, a, f.Payload)
	cancel()
	if err != nil {
		return false, s.handlerFailure("receive "+a.Label, err)
	}
	if err := s.m.Step(a); err != nil {
		return false, &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: err.Error()}
	}
	s.stepped(StepReceived, a, len(f.Payload))
	return true, nil
}

// stepped logs a step in the snapshot.
func (s *session) stepped(dir StepDir, a Action, size int) {
	s.info.Step++
	now := s.rt.o.Clock.Now()
	rt := s.rt
	rt.mu.Lock()
	defer rt.mu.Unlock()
	s.snap.Steps++
	s.snap.Updated = now
	if len(s.snap.Log) == maxStepLog {
		copy(s.snap.Log, s.snap.Log[1:])
		s.snap.Log = s.snap.Log[:maxStepLog-1]
	}
	s.snap.Log = append(s.snap.Log, StepRecord{At: now, Dir: dir, Peer: a.Peer, Label: a.Label, Branch: a.Branch, Size: size})
	if len(rt.watches) > 0 {
		rt.publishLocked(s)
	}
}

// finish records the outcome, tells the peers if this device gave up, and
// releases the session.
func (s *session) finish(err error) {
	rt := s.rt
	var reason *AbortReason
	if err != nil {
		if !errors.As(err, &reason) {
			switch {
			case rt.ctx.Err() != nil:
				reason = &AbortReason{Code: AbortShutdown, By: s.info.Role, Detail: "the daemon is stopping"}
			default:
				reason = &AbortReason{Code: AbortCancelled, By: s.info.Role, Detail: err.Error()}
			}
		}
	}
	s.cancel(nil)
	if reason != nil && !reason.Remote {
		s.tellAbort(reason)
	}
	now := rt.o.Clock.Now()
	rt.mu.Lock()
	s.snap.Updated, s.snap.Ended = now, now
	if reason == nil {
		s.snap.State = StateCompleted
	} else {
		s.snap.State = StateAborted
		s.snap.Reason = reason
	}
	rt.mu.Unlock()
	// Recorded with a fresh context: the session's own is over, and a
	// stopping daemon still wants the outcome on disk.
	pctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	if perr := rt.persist(pctx, s); perr != nil {
		rt.o.Logger.Warn("recording session outcome", zap.Stringer("session", s.info.ID), zap.Error(perr))
	}
	cancel()
	rt.mu.Lock()
	rt.finished = append(rt.finished, s.info.ID)
	for len(rt.finished) > rt.o.History {
		delete(rt.sessions, rt.finished[0])
		rt.finished = rt.finished[1:]
	}
	rt.publishLocked(s)
	rt.mu.Unlock()
	close(s.done)
}

// tellAbort sends the reason to every other participant, best effort.
func (s *session) tellAbort(r *AbortReason) {
	for role, dev := range s.hdr.Roles {
		if dev == s.rt.self {
			continue
		}
		f := frame{Session: s.info.ID, From: s.info.Role, To: role, Code: r.Code, Detail: truncate(r.Detail, maxDetailLen)}
		s.rt.sendAbort(dev, s.contextFor(dev), &f)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// sendAbort sends one abort frame, with a short deadline of its own: it is
// sent when the session's context is already over.
func (rt *Runtime) sendAbort(dev core.DeviceID, c core.ContextID, f *frame) {
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	err := rt.o.Transport.Send(ctx, transport.Message{
		Protocol: ProtocolSession, Context: c, To: dev, Type: TypeAbort, Cost: abortCost, Payload: f.encode(),
	})
	if err != nil {
		rt.o.Logger.Debug("abort not delivered", zap.Stringer("session", f.Session), zap.Stringer("peer", dev), zap.Error(err))
	}
}

// replyAbort answers a frame that belongs to no session we can run, off the
// transport's reading goroutine and with a bounded number in flight: a peer
// flooding us with junk gets at most that many answers at a time.
func (rt *Runtime) replyAbort(to []core.DeviceID, ctxOf func(core.DeviceID) core.ContextID, f frame) {
	select {
	case rt.reply <- struct{}{}:
	default:
		return
	}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		<-rt.reply
		return
	}
	// Added under the lock that Close takes before it waits.
	rt.wg.Add(1)
	rt.mu.Unlock()
	go func() {
		defer func() { <-rt.reply; rt.wg.Done() }()
		for _, d := range to {
			g := f
			rt.sendAbort(d, ctxOf(d), &g)
		}
	}()
}

// receive is the transport handler of ProtocolSession.
func (rt *Runtime) receive(_ context.Context, in transport.Incoming) {
	f, err := decodeFrame(in.Payload)
	if err != nil {
		rt.o.Logger.Debug("dropped session frame", zap.Stringer("from", in.From), zap.Error(err))
		return
	}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return
	}
	s := rt.sessions[f.Session]
	_, tomb := rt.tombs[f.Session]
	if s == nil && in.Type == TypeAbort {
		// A session we never joined (or already forgot): remember that it
		// is over, so a late header does not start it.
		rt.tombLocked(f.Session)
	}
	rt.mu.Unlock()

	switch in.Type {
	case TypeAbort:
		if s == nil {
			return
		}
		role := ""
		for r, d := range s.hdr.Roles {
			if d == in.From {
				role = r
			}
		}
		if role == "" {
			return // not a participant: it cannot end our session
		}
		r := &AbortReason{Code: f.Code, By: role, Remote: true, Detail: f.Detail}
		select {
		case <-s.done:
			rt.lateAbort(s, r)
		default:
			s.cancel(r)
			// The session may be past its last step and only recording its
			// outcome; then the cancel comes too late, and the abort is
			// applied as a late one once the record is written.
			go func() {
				<-s.done
				rt.lateAbort(s, r)
			}()
		}
	case TypeMsg, TypeJoin:
		if s != nil {
			select {
			case <-s.done:
				// Over on our side; a finished session's peer learns it
				// from our abort or has finished too.
			default:
				s.enqueue(inbound{typ: in.Type, from: in.From, ctx: in.Context, f: f})
			}
			return
		}
		if tomb {
			return
		}
		rt.join(in, f)
	}
}

// lateAbort records a peer's abort of a session whose part on this device
// had already completed: the session as a whole did not, and every
// participant's record should say so whether the abort arrived before or
// after its own last step.
func (rt *Runtime) lateAbort(s *session, r *AbortReason) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed || s.snap.State != StateCompleted {
		return
	}
	now := rt.o.Clock.Now()
	s.snap.State, s.snap.Reason, s.snap.Updated = StateAborted, r, now
	rt.publishLocked(s)
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
		defer cancel()
		if err := rt.persist(ctx, s); err != nil {
			rt.o.Logger.Warn("recording session outcome", zap.Stringer("session", s.info.ID), zap.Error(err))
		}
	}()
}

func (rt *Runtime) tombLocked(id SessionID) {
	if _, ok := rt.tombs[id]; ok {
		return
	}
	if len(rt.tombList) == maxTombstones {
		delete(rt.tombs, rt.tombList[0])
		rt.tombList = rt.tombList[1:]
	}
	rt.tombs[id] = struct{}{}
	rt.tombList = append(rt.tombList, id)
}

// join starts a session a peer told us about, or refuses it with an abort to
// every participant.
func (rt *Runtime) join(in transport.Incoming, f *frame) {
	back := frame{Session: f.Session, From: f.To, To: f.From}
	linkTo := func(d core.DeviceID) core.ContextID { return core.LinkContext(rt.self, d) }
	if f.Header == nil {
		back.Code, back.Detail = AbortUnknownSession, "no such session here"
		rt.replyAbort([]core.DeviceID{in.From}, func(core.DeviceID) core.ContextID { return in.Context }, back)
		return
	}
	h := f.Header
	ctxOf := func(d core.DeviceID) core.ContextID {
		if h.Context != (core.ContextID{}) {
			return h.Context
		}
		return linkTo(d)
	}
	others := make([]core.DeviceID, 0, len(h.Roles))
	for _, d := range h.Roles {
		if d != rt.self {
			others = append(others, d)
		}
	}
	refuse := func(code AbortCode, detail string) {
		rt.mu.Lock()
		rt.tombLocked(f.Session)
		rt.mu.Unlock()
		back.Code, back.Detail = code, detail
		// Only devices the header names hear from us; the sender must be
		// one of them or we answer it alone.
		if h.Roles[f.From] != in.From {
			rt.replyAbort([]core.DeviceID{in.From}, func(core.DeviceID) core.ContextID { return in.Context }, back)
			return
		}
		rt.replyAbort(others, ctxOf, back)
	}
	pe, ok := rt.protos[h.Protocol]
	if !ok {
		refuse(AbortUnknownProtocol, "protocol "+h.Protocol+" is not known here")
		return
	}
	if pe.hash != h.Hash {
		refuse(AbortUnknownProtocol, "protocol "+h.Protocol+" differs here (hash mismatch)")
		return
	}
	role, err := checkRoles(pe.p, h.Roles, rt.self)
	if err != nil {
		refuse(AbortRefused, err.Error())
		return
	}
	if h.Roles[f.From] != in.From || in.Context != ctxOf(in.From) {
		refuse(AbortWrongSender, "the first message does not come from the device of "+f.From)
		return
	}
	rt.mu.Lock()
	hd := rt.handlerFor(h.Protocol, role)
	rt.mu.Unlock()
	if hd == nil {
		refuse(AbortRefused, "no handler for role "+role+" of "+h.Protocol)
		return
	}
	s, err := rt.newSession(f.Session, h, pe, role, hd, false)
	if errors.Is(err, core.ErrAlreadyExists) {
		// Another participant's first message got here first.
		rt.mu.Lock()
		s = rt.sessions[f.Session]
		rt.mu.Unlock()
		if s != nil {
			s.enqueue(inbound{typ: in.Type, from: in.From, ctx: in.Context, f: f})
		}
		return
	}
	if err != nil {
		return // closing: nothing to answer
	}
	s.enqueue(inbound{typ: in.Type, from: in.From, ctx: in.Context, f: f})
	rt.launch(s)
}
