// Package ceremony runs Aura's consensus-gated operations (Category C,
// DESIGN §10) on the choreography runtime: a ceremony is bound to a prestate,
// named H(prestate ‖ operation ‖ nonce), commits at most once per prestate
// and records its commit or abort as a fact. Nothing it creates is usable
// before the commit.
//
// The first ceremony is the contact invitation: an invitation code passed
// out of band, then the ContactInvitation protocol (accept, commit or abort),
// ending with both devices holding the same new relational context: a
// context namespace whose genesis names them, and a root secret only they
// know. Contacts are then kept as facts in the device's authority namespace
// (rename and block are Category A: a fact, effective at once).
package ceremony

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/cloudflare/circl/kem"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/session"
)

// ProtocolContact is the protocol of the contact ceremony
// (internal/choreo/protocols/contact.choreo).
const ProtocolContact = "ContactInvitation"

// Invitation lifetimes.
const (
	DefaultExpiry = 7 * 24 * time.Hour
	MaxExpiry     = 30 * 24 * time.Hour
	MinExpiry     = time.Minute
)

// Sentinel errors callers branch on.
var (
	ErrNotFound   = fmt.Errorf("no such invitation: %w", core.ErrNotFound)
	ErrNotPending = fmt.Errorf("invitation is no longer pending: %w", core.ErrFailedPrecondition)
	// ErrInvitationExpired: past its expiry, a pending invitation is as good
	// as resolved.
	ErrInvitationExpired = fmt.Errorf("expired: %w", ErrNotPending)
	ErrOwnInvitation     = fmt.Errorf("that is this device's own invitation: %w", core.ErrInvalidArgument)
	ErrAcceptRunning     = fmt.Errorf("an answer to an invitation from that device is already running: %w", core.ErrFailedPrecondition)
	ErrAlreadyAccepted   = fmt.Errorf("this invitation was already accepted here: %w", core.ErrAlreadyExists)
	ErrUnreachable       = fmt.Errorf("inviter not reachable at any address in the code: %w", core.ErrUnavailable)
	ErrNoContact         = fmt.Errorf("no such contact: %w", core.ErrNotFound)
)

// Journal is what the ceremonies need of the journal.
type Journal interface {
	SignLocal(signer journal.Signer, d journal.Draft) (*journal.SignedFact, error)
	Commit(ctx context.Context, t journal.Txn) ([]journal.Committed, error)
	ViewExt(ctx context.Context, owner string, fn func(s *journal.ExtStore) error) error
	Get(ctx context.Context, id core.FactID) (journal.StoredFact, error)
	State(ctx context.Context, reducer string, ns core.Namespace, key []byte) ([]byte, bool, error)
	ScanState(ctx context.Context, reducer string, ns core.Namespace, after []byte, limit int, fn func(key, state []byte) bool) error
	Members(ctx context.Context, ns core.Namespace) ([]core.DeviceID, error)
}

// Sessions is what the ceremonies need of the choreography runtime.
type Sessions interface {
	Register(protocolName, role string, h session.Handler) error
	Start(ctx context.Context, protocolName string, roles map[string]core.DeviceID, o session.StartOptions) (session.Session, error)
	Wait(ctx context.Context, id session.SessionID) (session.Session, error)
}

// Network tells invitation codes where this device is, and teaches the
// transport where an inviter is.
type Network interface {
	Addrs() []string
	AddPeer(ctx context.Context, addr string) error
}

// Options configure a Service; every field is required but Clock, Rand
// and Logger.
type Options struct {
	Journal   Journal
	Sessions  Sessions
	Network   Network
	Signer    journal.Signer
	DeviceKey ed25519.PrivateKey
	HPKE      kem.PrivateKey
	HPKEPub   []byte
	Authority core.AuthorityID
	Namespace core.Namespace // this device's authority namespace
	Clock     core.Clock
	Rand      io.Reader
	Logger    *zap.Logger
}

// Service runs contact ceremonies and keeps contacts. Safe for concurrent
// use.
type Service struct {
	o    Options
	self core.DeviceID
	wrap *wrapper

	mu sync.Mutex
	// Invitee side: the answer of each running session; the answer whose
	// session is starting, per inviter; and the inviters an answer is
	// running for (one at a time each).
	answersMu sync.Mutex
	answers   map[session.SessionID]*answer
	pending   map[core.DeviceID]*answer
	busy      map[core.DeviceID]bool
	// deciding: inviter side, per session, what the acceptance said.
	deciding map[session.SessionID]*decision
	watchers map[chan Record]struct{}
	blocked  map[core.DeviceID]bool
}

// New opens the service: it marks ceremonies a previous run left running as
// aborted (their sessions did not survive the restart), loads which
// contacts are blocked, and registers both roles' handlers.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Journal == nil || o.Sessions == nil || o.Network == nil || o.Signer == nil || o.DeviceKey == nil || o.HPKE == nil || len(o.HPKEPub) != 32 {
		return nil, fmt.Errorf("ceremony service: journal, sessions, network, signer and keys are required: %w", core.ErrInternal)
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
	w, err := newWrapper(o.DeviceKey)
	if err != nil {
		return nil, err
	}
	s := &Service{
		o: o, self: o.Signer.DeviceID(), wrap: w,
		answers: map[session.SessionID]*answer{}, pending: map[core.DeviceID]*answer{}, busy: map[core.DeviceID]bool{}, deciding: map[session.SessionID]*decision{},
		watchers: map[chan Record]struct{}{}, blocked: map[core.DeviceID]bool{},
	}
	if err := s.abortLeftRunning(ctx); err != nil {
		return nil, err
	}
	if err := s.loadBlocked(ctx); err != nil {
		return nil, err
	}
	if err := o.Sessions.Register(ProtocolContact, RoleInvitee, inviteeHandler{s}); err != nil {
		return nil, err
	}
	if err := o.Sessions.Register(ProtocolContact, RoleInviter, inviterHandler{s}); err != nil {
		return nil, err
	}
	return s, nil
}

// Invite makes an invitation valid for expires and returns it with its code.
func (s *Service) Invite(ctx context.Context, expires time.Duration, message string) (*InvitationRecord, string, error) {
	if expires == 0 {
		expires = DefaultExpiry
	}
	if expires < MinExpiry || expires > MaxExpiry {
		return nil, "", fmt.Errorf("expiry %s: want %s to %s: %w", expires, MinExpiry, MaxExpiry, core.ErrInvalidArgument)
	}
	addrs := s.o.Network.Addrs()
	if len(addrs) > MaxCodeAddrs {
		addrs = addrs[:MaxCodeAddrs]
	}
	now := s.o.Clock.Now()
	iv := &Invitation{Inviter: s.self, Authority: s.o.Authority, Expires: now.Add(expires).Truncate(time.Second), Addrs: addrs, Message: message}
	copy(iv.InviterHPKE[:], s.o.HPKEPub)
	if _, err := io.ReadFull(s.o.Rand, iv.ID[:]); err != nil {
		return nil, "", err
	}
	if _, err := io.ReadFull(s.o.Rand, iv.Secret[:]); err != nil {
		return nil, "", err
	}
	if err := iv.Sign(s.o.DeviceKey); err != nil {
		return nil, "", err
	}
	rec := &InvitationRecord{ID: iv.ID, State: InvitationPending, Created: now, Expires: iv.Expires, Secret: iv.Secret, Message: message}
	if _, err := s.o.Journal.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		b, err := sub(tx, subInvitations)
		if err != nil {
			return err
		}
		return b.Put(rec.ID[:], rec.encode())
	}}}); err != nil {
		return nil, "", err
	}
	return rec, iv.Code(), nil
}

// Invitations lists this device's invitations, newest first.
func (s *Service) Invitations(ctx context.Context) ([]*InvitationRecord, error) {
	var out []*InvitationRecord
	err := s.view(ctx, subInvitations, func(b *journal.ExtStore) error {
		return b.ForEach(func(_, v []byte) error {
			r, err := decodeInvitationRecord(v)
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b *InvitationRecord) int { return b.Created.Compare(a.Created) })
	return out, err
}

// Invitation returns one invitation by id.
func (s *Service) Invitation(ctx context.Context, id [16]byte) (*InvitationRecord, error) {
	var rec *InvitationRecord
	err := s.view(ctx, subInvitations, func(b *journal.ExtStore) error {
		v := b.Get(id[:])
		if v == nil {
			return ErrNotFound
		}
		var err error
		rec, err = decodeInvitationRecord(v)
		return err
	})
	return rec, err
}

// Cancel withdraws a pending invitation; only its inviter can, and only
// once. A cancel racing an accept: whichever the journal commits first wins,
// and the other is refused.
func (s *Service) Cancel(ctx context.Context, id [16]byte) (*InvitationRecord, error) {
	var rec *InvitationRecord
	abort := &Abort{Operation: OperationContact, Reason: ReasonCancelled, Detail: "cancelled by the inviter"}
	copy(abort.Ceremony[:], id[:])
	fact, err := s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: s.o.Namespace, TypeID: TypeAbort, Payload: abort.Encode()})
	if err != nil {
		return nil, err
	}
	_, err = s.o.Journal.Commit(ctx, journal.Txn{Facts: []*journal.SignedFact{fact}, Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		var err error
		rec, err = s.resolve(tx, id, func(r *InvitationRecord) error {
			r.State = InvitationCancelled
			return nil
		})
		return err
	}}})
	return rec, err
}

// resolve moves a pending invitation to its one resolution inside tx.
func (s *Service) resolve(tx *journal.ExtTx, id [16]byte, set func(*InvitationRecord) error) (*InvitationRecord, error) {
	b, err := sub(tx, subInvitations)
	if err != nil {
		return nil, err
	}
	v := b.Get(id[:])
	if v == nil {
		return nil, ErrNotFound
	}
	r, err := decodeInvitationRecord(v)
	if err != nil {
		return nil, err
	}
	if r.State != InvitationPending {
		return nil, fmt.Errorf("invitation is %s: %w", r.State, ErrNotPending)
	}
	if r.Expired(s.o.Clock.Now()) {
		return nil, fmt.Errorf("invitation expired at %s: %w", r.Expires.Format(time.RFC3339), ErrInvitationExpired)
	}
	if err := set(r); err != nil {
		return nil, err
	}
	r.Resolved = s.o.Clock.Now()
	return r, b.Put(id[:], r.encode())
}

// Records lists the ceremonies this device took part in, newest first.
func (s *Service) Records(ctx context.Context) ([]*Record, error) {
	var out []*Record
	err := s.view(ctx, subCeremonies, func(b *journal.ExtStore) error {
		return b.ForEach(func(_, v []byte) error {
			r, err := decodeRecord(v)
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b *Record) int { return b.Started.Compare(a.Started) })
	return out, err
}

// Record returns one ceremony by id.
func (s *Service) Record(ctx context.Context, id core.Hash) (*Record, error) {
	var rec *Record
	err := s.view(ctx, subCeremonies, func(b *journal.ExtStore) error {
		v := b.Get(id[:])
		if v == nil {
			return fmt.Errorf("ceremony %s: %w", id, core.ErrNotFound)
		}
		var err error
		rec, err = decodeRecord(v)
		return err
	})
	return rec, err
}

// Watch delivers every change of a ceremony record until ctx ends. A
// watcher that falls behind by more than its buffer is cut off (the channel
// closes) rather than slowing ceremonies down; it can list and watch again.
func (s *Service) Watch(ctx context.Context) <-chan Record {
	ch := make(chan Record, 64)
	s.mu.Lock()
	s.watchers[ch] = struct{}{}
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		if _, ok := s.watchers[ch]; ok {
			delete(s.watchers, ch)
			close(ch)
		}
		s.mu.Unlock()
	}()
	return ch
}

func (s *Service) publish(r *Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.watchers {
		select {
		case ch <- *r:
		default:
			delete(s.watchers, ch)
			close(ch)
		}
	}
}

// putRecord is a TxOp that stores r.
func putRecord(r *Record) journal.TxOp {
	return func(tx *journal.ExtTx) error {
		b, err := sub(tx, subCeremonies)
		if err != nil {
			return err
		}
		return b.Put(r.ID[:], r.encode())
	}
}

// saveRecord stores r on its own and tells the watchers.
func (s *Service) saveRecord(ctx context.Context, r *Record, facts ...*journal.SignedFact) error {
	r.Updated = s.o.Clock.Now()
	if _, err := s.o.Journal.Commit(ctx, journal.Txn{Facts: facts, Ops: []journal.TxOp{putRecord(r)}}); err != nil {
		return err
	}
	s.publish(r)
	return nil
}

// abortLeftRunning ends the ceremonies a previous run left running: their
// sessions were aborted by the restart. A committed ceremony is never
// touched: its commit fact stands.
func (s *Service) abortLeftRunning(ctx context.Context) error {
	recs, err := s.Records(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.State != CeremonyRunning {
			continue
		}
		r.State, r.Reason, r.Detail = CeremonyAborted, ReasonRestarted, "aurad restarted during the ceremony"
		f, err := s.abortFact(r)
		if err != nil {
			return err
		}
		if err := s.saveRecord(ctx, r, f); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) abortFact(r *Record) (*journal.SignedFact, error) {
	a := &Abort{Ceremony: r.ID, Operation: r.Operation, Reason: r.Reason, Detail: r.Detail}
	return s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: s.o.Namespace, TypeID: TypeAbort, Payload: a.Encode()})
}

// view runs fn on the named sub-store if it exists; a missing store holds
// nothing, and fn is not called.
func (s *Service) view(ctx context.Context, name string, fn func(*journal.ExtStore) error) error {
	return s.o.Journal.ViewExt(ctx, extOwner, func(root *journal.ExtStore) error {
		if root == nil {
			return nil
		}
		b := root.SubIfExists([]byte(name))
		if b == nil {
			return nil
		}
		return fn(b)
	})
}

func sub(tx *journal.ExtTx, name string) (*journal.ExtStore, error) {
	root, err := tx.Bucket(extOwner)
	if err != nil {
		return nil, err
	}
	return root.Sub([]byte(name))
}

// isFinalErr reports errors that mean the invitation cannot be answered.
func isFinalErr(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotPending) || isCodeError(err)
}
