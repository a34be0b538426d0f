package session

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/choreo"
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
// send commits, checking that this device may author them, and its own
// extension bucket for session records.
type Journal interface {
	SignLocal(signer journal.Signer, d journal.Draft) (*journal.SignedFact, error)
	Members(ctx context.Context, ns core.Namespace) ([]core.DeviceID, error)
	Commit(ctx context.Context, t journal.Txn) ([]journal.Committed, error)
	ViewExt(ctx context.Context, owner string, fn func(s *journal.ExtStore) error) error
}

// Allower registers message types, and the capabilities they may claim, with
// the capability step.
type Allower interface {
	Allow(msgType string, classes ...core.Class)
	Grant(msgType string, capabilities ...string)
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
	Choose(ctx context.Context, s Info, branches []choreo.Action) (string, error)
	// Send returns the payload of message a, and the facts that commit with
	// it: the runtime signs each draft as this device (assigning its
	// lamport, so a draft leaves Lamport zero) and commits them in the
	// transaction of the message's flow charge, so the facts are durable
	// if and only if the message is paid for (and so sent). A draft may name
	// any namespace this device is a member of. A fact the journal refuses
	// (its type's validator, or a namespace this device is not a member
	// of) aborts the session with AbortHandler before anything is charged.
	// With no facts, a message annotated journal_facts commits the
	// runtime's own TypeFact in the device's namespace instead.
	Send(ctx context.Context, s Info, a choreo.Action) (payload []byte, facts []journal.Draft, err error)
	// Receive consumes the payload of message a.
	Receive(ctx context.Context, s Info, a choreo.Action, payload []byte) error
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
	// contact and group contexts, and that TypeMsg may claim every capability
	// the protocols' guard_capability annotations name.
	Authorizer Allower
	// Protocols the runtime can run: the embedded ones, in aurad.
	Protocols []*choreo.Projection
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
	maxInbox      = 1024 // queued messages per session before it is cut off
	maxSendFacts  = 16   // facts a handler may attach to one message
	abortTimeout  = 2 * time.Second
	maxTombstones = 1024
	maxReplies    = 16 // concurrent out-of-session abort replies
	controlCost   = 1  // a join pays like a message
	abortCost     = 0  // an abort must get through an exhausted budget
	// The bucket kept its name when the runtime left package choreo:
	// existing data dirs hold their session records there.
	bucketSessions = "choreo.sessions"
)

type protoEntry struct {
	p    *choreo.Projection
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
func ProtocolHash(p *choreo.Projection) core.Hash {
	var b strings.Builder
	choreo.FormatProtocol(&b, p.Protocol)
	for _, r := range p.Roles {
		b.WriteString("\x00")
		b.WriteString(r.Role)
		b.WriteString("\x00")
		b.WriteString(choreo.LocalString(r.Type))
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
		// Until capability tokens arrive, membership of a context grants
		// every capability a protocol's sends name: the role a device plays
		// is settled by the session, not by the capability step.
		for _, pe := range rt.protos {
			o.Authorizer.Grant(TypeMsg, guardCapabilities(pe.p)...)
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
		return fmt.Errorf("protocol %s: %w", protocolName, choreo.ErrUnknown)
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

// guardCapabilities lists the capabilities the sends of p name, in any role.
func guardCapabilities(p *choreo.Projection) []string {
	var caps []string
	var walk func(l choreo.Local)
	walk = func(l choreo.Local) {
		switch l := l.(type) {
		case *choreo.Send:
			if l.Ann.GuardCapability != "" {
				caps = append(caps, l.Ann.GuardCapability)
			}
			walk(l.Cont)
		case *choreo.Recv:
			walk(l.Cont)
		case *choreo.Select:
			for _, a := range l.Arms {
				if a.Send != nil {
					walk(a.Send)
				}
			}
		case *choreo.Branch:
			for _, a := range l.Arms {
				if a != nil {
					walk(a)
				}
			}
		case *choreo.Rec:
			walk(l.Body)
		}
	}
	for _, r := range p.Roles {
		walk(r.Type)
	}
	return caps
}
