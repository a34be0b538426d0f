// Package sync makes devices that share a namespace converge on its facts
// (DESIGN §7).
//
// Eager half (announce.go, follow.go): every fact this device writes in a
// relational context is announced to the context's other members as it
// commits, over the guard chain, charged to the context's budget.
//
// Reconciliation (engine.go, session.go, ranges.go, push.go, wire.go): a
// session per shared namespace and peer, on every connection, on a timer and
// on demand. The initiator streams coded symbols of its fact ids (riblt/, a
// rateless IBLT kept by the journal beside its range aggregate, keyed by a
// secret only the namespace's members hold); the responder decodes the
// difference, or asks for range-based reconciliation over the journal's
// (lamport, id) order when the difference is too large for the sketch or one
// side is nearly empty. Each side then sends what the other lacks, saying
// first how many facts it sends, so a session ends by itself; facts received
// are verified in parallel and group-committed (journal.Receiver). Messages
// travel in the namespace's context, so only its members take part and the
// namespace is never named on the wire.
package sync

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	stdsync "sync"

	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/transport"
)

// Wire names of announcements.
const (
	ProtocolAnnounce protocol.ID = "/aura/announce/1"
	TypeFacts                    = "sync.facts"
)

// Limits of one announcement.
const (
	MaxAnnounceFacts = 16
	announceVersion  = 1
	// announceCost is one flow unit per fact: an announcement is traffic
	// like any other in its context.
	announceCost = 1
)

// Transport is what announcements need of the transport.
type Transport interface {
	Handle(proto protocol.ID, h transport.Handler)
	Send(ctx context.Context, m transport.Message) error
	Self() core.DeviceID
	// Misbehaved counts a sender's forged or refused fact against it.
	Misbehaved(d core.DeviceID, reason string, err error)
}

// Journal is what announcements need of the journal.
type Journal interface {
	Members(ctx context.Context, ns core.Namespace) ([]core.DeviceID, error)
	Receive(ctx context.Context, from core.DeviceID, sf *journal.SignedFact) (journal.Received, error)
}

// Allower registers message types with the guard chain.
type Allower interface {
	Allow(msgType string, classes ...core.Class)
}

// Announcer sends and receives announcements.
type Announcer struct {
	t   Transport
	j   Journal
	log *zap.Logger
	// onGap hears of a sender whose announced facts arrived before what
	// they build on: reconciliation with it fills the gap at once.
	onGap func(core.DeviceID)
	// account is this device's account context, whose namespace is the
	// account's authority namespace, not a context namespace.
	account   core.ContextID
	accountNS core.Namespace

	stop context.CancelFunc
	wg   stdsync.WaitGroup
}

// SetAccount names this device's account: facts it writes in the
// account's authority namespace are announced to the account's other
// devices in the account context (core.AccountContext). Call it before
// facts flow.
func (a *Announcer) SetAccount(auth core.AuthorityID) {
	a.account, a.accountNS = core.AccountContext(auth), core.AuthorityNamespace(auth)
}

// namespaceOf is the namespace whose facts travel in context c.
func (a *Announcer) namespaceOf(c core.ContextID) core.Namespace {
	if c == a.account && a.accountNS.Kind != 0 {
		return a.accountNS
	}
	return core.ContextNamespace(c)
}

// OnGap sets what hears of announcements that arrived out of order. Call it
// before facts flow.
func (a *Announcer) OnGap(fn func(core.DeviceID)) { a.onGap = fn }

// NewAnnouncer registers the announcement protocol with the transport;
// announcements travel in contact and group contexts only.
func NewAnnouncer(t Transport, j Journal, authz Allower, log *zap.Logger) *Announcer {
	if log == nil {
		log = zap.NewNop()
	}
	a := &Announcer{t: t, j: j, log: log}
	authz.Allow(TypeFacts, core.ClassContact, core.ClassGroup)
	t.Handle(ProtocolAnnounce, a.receive)
	return a
}

// Announce sends facts of one context's namespace to its other members. A
// member that cannot be reached now is left to reconciliation; the error
// says how many were not reached.
func (a *Announcer) Announce(ctx context.Context, c core.ContextID, facts []*journal.SignedFact) error {
	ns := a.namespaceOf(c)
	for _, f := range facts {
		if f.Namespace != ns {
			return fmt.Errorf("fact %s is not in context %s: %w", f.ID, c, core.ErrInvalidArgument)
		}
	}
	members, err := a.j.Members(ctx, ns)
	if err != nil {
		return err
	}
	var payloads [][]byte
	var counts []int
	for len(facts) > 0 {
		batch := facts[:min(len(facts), MaxAnnounceFacts)]
		facts = facts[len(batch):]
		payloads, counts = append(payloads, EncodeFacts(batch)), append(counts, len(batch))
	}
	// Each member gets the batches in order on a goroutine of its own: the
	// budget ledger group-commits charges made at once, so announcing to n
	// members costs about one commit rather than n in a row.
	var (
		mu     stdsync.Mutex
		missed int
		last   error
		wg     stdsync.WaitGroup
	)
	for _, m := range members {
		if m == a.t.Self() {
			continue
		}
		wg.Go(func() {
			for i, payload := range payloads {
				err := a.t.Send(ctx, transport.Message{Protocol: ProtocolAnnounce, Context: c, To: m, Type: TypeFacts, Cost: announceCost * uint64(counts[i]), Payload: payload})
				if err != nil {
					mu.Lock()
					missed++
					last = err
					mu.Unlock()
					a.log.Debug("announcement not delivered; reconciliation will carry it", zap.Stringer("to", m), zap.Error(err))
				}
			}
		})
	}
	wg.Wait()
	if missed > 0 {
		return fmt.Errorf("%d announcements not delivered: %w", missed, last)
	}
	return nil
}

// receive takes in announced facts: only facts of the message's own context
// (a member of one context cannot slip facts into another), each through the
// journal's checks (signature, validators, membership of its author, the
// orphan pool for what arrives early).
func (a *Announcer) receive(ctx context.Context, in transport.Incoming) {
	facts, err := DecodeFacts(in.Payload)
	if err != nil {
		a.log.Debug("announcement refused", zap.Stringer("from", in.From), zap.Error(err))
		a.t.Misbehaved(in.From, "announce_malformed", err)
		return
	}
	ns := a.namespaceOf(in.Context)
	gap := false
	for _, f := range facts {
		if f.Namespace != ns {
			a.log.Debug("announced fact outside its context refused", zap.Stringer("from", in.From), zap.Stringer("fact", f.ID))
			a.t.Misbehaved(in.From, "sync_foreign_fact", fmt.Errorf("fact %s is not in context %s", f.ID, in.Context))
			continue
		}
		r, err := a.j.Receive(ctx, in.From, f)
		if err != nil {
			a.log.Debug("announced fact refused", zap.Stringer("from", in.From), zap.Stringer("fact", f.ID), zap.Error(err))
			// Counted as sync counts the facts of a session: a forgery or
			// a fact the journal's checks refuse is the sender's doing; a
			// local failure is not.
			switch {
			case errors.Is(err, journal.ErrBadSignature):
				a.t.Misbehaved(in.From, "sync_forged_fact", err)
			case errors.Is(err, core.ErrInvalidArgument), errors.Is(err, core.ErrPermissionDenied):
				a.t.Misbehaved(in.From, "sync_refused_fact", err)
			}
			continue
		}
		gap = gap || r.Orphaned
	}
	if gap && a.onGap != nil {
		a.onGap(in.From)
	}
}

// EncodeFacts is an announcement's payload: version(1) count(1) then each
// signed fact behind a 4-byte length.
func EncodeFacts(facts []*journal.SignedFact) []byte {
	b := []byte{announceVersion, byte(len(facts))}
	for _, f := range facts {
		enc := f.Encode()
		b = binary.BigEndian.AppendUint32(b, uint32(len(enc)))
		b = append(b, enc...)
	}
	return b
}

// DecodeFacts parses an announcement strictly.
func DecodeFacts(b []byte) ([]*journal.SignedFact, error) {
	bad := func(format string, args ...any) ([]*journal.SignedFact, error) {
		return nil, fmt.Errorf("announcement: %s: %w", fmt.Sprintf(format, args...), core.ErrInvalidArgument)
	}
	if len(b) < 2 {
		return bad("%d bytes", len(b))
	}
	if b[0] != announceVersion {
		return bad("version %d", b[0])
	}
	n := int(b[1])
	if n == 0 || n > MaxAnnounceFacts {
		return bad("%d facts, want 1..%d", n, MaxAnnounceFacts)
	}
	b = b[2:]
	out := make([]*journal.SignedFact, 0, n)
	for i := range n {
		if len(b) < 4 {
			return bad("fact %d truncated", i)
		}
		l := binary.BigEndian.Uint32(b)
		b = b[4:]
		if l == 0 || l > journal.MaxSignedFactSize || int(l) > len(b) {
			return bad("fact %d of %d bytes", i, l)
		}
		f, err := journal.DecodeSignedFact(b[:l])
		if err != nil {
			return bad("fact %d: %v", i, err)
		}
		out = append(out, f)
		b = b[l:]
	}
	if len(b) > 0 {
		return bad("%d trailing bytes", len(b))
	}
	return out, nil
}
