package wot

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// The Service keeps this device's view of the web of trust: the edges it can
// see (its own, in its authority namespace, and those contacts endorsed to
// it in their shared contexts), a Graph over them kept current from the
// journal, and the capability tokens its authority issues and verifies.
//
// Trust, endorsement and revocation facts are folded by a journal reducer
// (one state per edge or revoked block, latest edge wins), so a start reads
// the folded state instead of replaying the journal; the facts committed
// after that point reach the graph through a journal watch.

const (
	reducerName = "wot"
	keyEdge     = 'e'
	keyEndorse  = 'n'
	keyRevoke   = 'r'
)

// Journal is what the service needs of the journal.
type Journal interface {
	SignLocal(signer journal.Signer, d journal.Draft) (*journal.SignedFact, error)
	Commit(ctx context.Context, t journal.Txn) ([]journal.Committed, error)
	Stats(ctx context.Context) (journal.Stats, error)
	ScanState(ctx context.Context, reducer string, ns core.Namespace, after []byte, limit int, fn func(key, state []byte) bool) error
	Watch(ctx context.Context, opts journal.WatchOptions) (*journal.Subscription, error)
	Members(ctx context.Context, ns core.Namespace) ([]core.DeviceID, error)
}

// Contexts lists the relational contexts this device shares, and the
// authority and device of the contact on the other side of each.
type Contexts interface {
	SharedContexts(ctx context.Context) ([]SharedContext, error)
}

// SharedContext is one relational context as the service needs it.
type SharedContext struct {
	Context   core.ContextID
	Authority core.AuthorityID
	Device    core.DeviceID
}

// ServiceOptions configure a Service; Clock, Rand and Logger default. Shared
// edges reach contacts as sync announces every fact this device writes in a
// context.
type ServiceOptions struct {
	Journal   Journal
	Contexts  Contexts
	Signer    journal.Signer
	DeviceKey ed25519.PrivateKey
	Authority core.AuthorityID
	Namespace core.Namespace // this device's authority namespace
	MaxHops   int
	Clock     core.Clock
	Rand      io.Reader
	Logger    *zap.Logger
}

// Service is safe for concurrent use.
type Service struct {
	o     ServiceOptions
	self  core.DeviceID
	graph *Graph
	revs  *RevocationSet
	keys  *IssuerTable
	ver   *Verifier

	mu   sync.Mutex
	seqs map[core.DeviceID]uint64 // highest seq of this device's own edges
	// sources of each visible edge: its own namespace and each context it
	// was endorsed in, so a withdrawal only hides the edge if no other
	// source still shows it.
	sources map[[2]core.DeviceID]map[core.Namespace]TrustEdge

	stop context.CancelFunc
	done chan struct{}
}

// NewService loads the folded trust state and follows the journal.
func NewService(ctx context.Context, o ServiceOptions) (*Service, error) {
	if o.Journal == nil || o.Contexts == nil || o.Signer == nil || o.DeviceKey == nil || !o.Namespace.Valid() {
		return nil, fmt.Errorf("wot service: journal, contexts, signer, key and namespace are required: %w", core.ErrInternal)
	}
	if o.Clock == nil {
		o.Clock = core.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxHops <= 0 {
		o.MaxHops = DefaultMaxHops
	}
	s := &Service{
		o: o, self: o.Signer.DeviceID(), graph: NewGraph(), revs: NewRevocationSet(), keys: NewIssuerTable(),
		seqs: map[core.DeviceID]uint64{}, sources: map[[2]core.DeviceID]map[core.Namespace]TrustEdge{},
	}
	// Until the commitment tree names an authority's token key, a
	// one-device authority's tokens are rooted in its device key.
	if err := s.keys.Set(o.Authority, o.DeviceKey.Public().(ed25519.PublicKey), 0); err != nil {
		return nil, err
	}
	v, err := NewVerifier(VerifierConfig{Keys: s.keys, Revocations: s.revs, Now: o.Clock.Now})
	if err != nil {
		return nil, err
	}
	s.ver = v
	st, err := o.Journal.Stats(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	sub, err := o.Journal.Watch(ctx, journal.WatchOptions{AfterSeq: st.LastSeq})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.follow(wctx, sub)
	return s, nil
}

// Close stops following the journal.
func (s *Service) Close() {
	s.stop()
	<-s.done
}

// load reads the folded state of this device's namespace and of every
// context it shares.
func (s *Service) load(ctx context.Context) error {
	nss := []core.Namespace{s.o.Namespace}
	shared, err := s.o.Contexts.SharedContexts(ctx)
	if err != nil {
		return err
	}
	for _, c := range shared {
		nss = append(nss, core.ContextNamespace(c.Context))
		s.learnIssuer(c)
	}
	for _, ns := range nss {
		var ferr error
		err := s.o.Journal.ScanState(ctx, reducerName, ns, nil, 0, func(key, state []byte) bool {
			if ferr = s.applyState(ns, key, state); ferr != nil {
				return false
			}
			return true
		})
		if err == nil {
			err = ferr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// learnIssuer lets tokens rooted in a contact's authority verify here.
func (s *Service) learnIssuer(c SharedContext) {
	if c.Authority == s.o.Authority {
		return
	}
	if _, _, err := s.keys.IssuerKey(c.Authority); err == nil {
		return
	}
	_ = s.keys.Set(c.Authority, c.Device.PublicKey(), 0)
}

func (s *Service) applyState(ns core.Namespace, key, state []byte) error {
	switch key[0] {
	case keyEdge:
		e, err := DecodeTrustEdge(state)
		if err != nil {
			return err
		}
		s.see(ns, e, false)
	case keyEndorse:
		n, err := DecodeEndorsement(state)
		if err != nil {
			return err
		}
		s.see(ns, n.Edge, n.Withdrawn)
	case keyRevoke:
		r, err := DecodeRevocation(state)
		if err != nil {
			return err
		}
		s.revs.Add(r)
	}
	return nil
}

// see records that ns shows e (or no longer does) and updates the graph to
// the newest edge still shown by any source.
func (s *Service) see(ns core.Namespace, e TrustEdge, withdrawn bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]core.DeviceID{e.From, e.To}
	src := s.sources[k]
	if src == nil {
		src = map[core.Namespace]TrustEdge{}
		s.sources[k] = src
	}
	if old, ok := src[ns]; ok && !e.Newer(old) {
		return
	}
	if withdrawn {
		delete(src, ns)
	} else {
		src[ns] = e
	}
	if e.From == s.self && e.Seq > s.seqs[e.To] {
		s.seqs[e.To] = e.Seq
	}
	var best *TrustEdge
	for _, c := range src {
		if best == nil || c.Newer(*best) {
			best = &c
		}
	}
	if best == nil {
		s.graph.Remove(e.From, e.To)
		return
	}
	if _, err := s.graph.Set(*best); err != nil {
		s.o.Logger.Warn("trust edge not indexed", zap.Error(err))
	}
}

// follow feeds facts committed after the load into the graph.
func (s *Service) follow(ctx context.Context, sub *journal.Subscription) {
	defer close(s.done)
	defer sub.Close()
	for {
		f, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.o.Logger.Warn("trust view stopped following the journal; restart aurad to resume", zap.Error(err))
			}
			return
		}
		if !(reducer{}).Handles(f.TypeID) {
			continue
		}
		if f.Namespace.Kind != core.NamespaceContext && f.Namespace != s.o.Namespace {
			continue
		}
		key, err := (reducer{}).Key(f.SignedFact)
		if err != nil {
			continue // the validator let it in, so this cannot happen
		}
		// Each fact's payload is the state its key folds to.
		if err := s.applyState(f.Namespace, key, f.Payload); err != nil {
			s.o.Logger.Warn("trust fact not applied", zap.Stringer("fact", f.ID), zap.Error(err))
		}
	}
}

// SetTrust states this device's trust in another, and shares the edge with
// the contacts of the given contexts (all shared contexts if shareAll).
func (s *Service) SetTrust(ctx context.Context, to core.DeviceID, level Level, share []core.ContextID, shareAll bool) (TrustEdge, error) {
	s.mu.Lock()
	e := TrustEdge{From: s.self, To: to, Level: level, Seq: s.seqs[to] + 1}
	s.mu.Unlock()
	if err := e.Validate(); err != nil {
		return TrustEdge{}, err
	}
	drafts := []journal.Draft{{Namespace: s.o.Namespace, TypeID: TypeTrustEdge, Payload: e.Encode()}}
	if shareAll {
		shared, err := s.o.Contexts.SharedContexts(ctx)
		if err != nil {
			return TrustEdge{}, err
		}
		for _, c := range shared {
			share = append(share, c.Context)
		}
	}
	slices.SortFunc(share, func(a, b core.ContextID) int { return bytes.Compare(a[:], b[:]) })
	share = slices.Compact(share)
	for _, c := range share {
		ms, err := s.o.Journal.Members(ctx, core.ContextNamespace(c))
		if err != nil {
			return TrustEdge{}, err
		}
		if !slices.Contains(ms, s.self) {
			return TrustEdge{}, fmt.Errorf("context %s: this device is not a participant: %w", c, core.ErrFailedPrecondition)
		}
		drafts = append(drafts, journal.Draft{Namespace: core.ContextNamespace(c), TypeID: TypeEndorsement, Payload: Endorsement{Edge: e}.Encode()})
	}
	var facts []*journal.SignedFact
	for _, d := range drafts {
		f, err := s.o.Journal.SignLocal(s.o.Signer, d)
		if err != nil {
			return TrustEdge{}, err
		}
		facts = append(facts, f)
	}
	if _, err := s.o.Journal.Commit(ctx, journal.Txn{Facts: facts}); err != nil {
		return TrustEdge{}, err
	}
	// Visible at once, not only when the watch catches up.
	for _, f := range facts {
		if f.TypeID == TypeTrustEdge {
			s.see(f.Namespace, e, false)
		}
	}
	return e, nil
}

// Edges lists the visible edges, sorted by (from, to).
func (s *Service) Edges() []TrustEdge {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []TrustEdge
	for k := range s.sources {
		if e, ok := s.graph.Edge(k[0], k[1]); ok {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b TrustEdge) int {
		if c := bytes.Compare(a.From[:], b.From[:]); c != 0 {
			return c
		}
		return bytes.Compare(a.To[:], b.To[:])
	})
	return out
}

// Compute is the transitive trust from one device in another over the
// visible edges, with its evidence path.
func (s *Service) Compute(from, to core.DeviceID, maxHops int) (Level, Path) {
	if maxHops <= 0 {
		maxHops = s.o.MaxHops
	}
	return s.graph.Compute(from, to, maxHops)
}

// Authorize decides whether from trusts to at least min, with its evidence.
func (s *Service) Authorize(from, to core.DeviceID, min Level, maxHops int) Decision {
	if maxHops <= 0 {
		maxHops = s.o.MaxHops
	}
	return s.graph.Authorize(from, to, min, maxHops)
}

// Issue roots a capability token in this device's authority.
func (s *Service) Issue(g Grant) (*Token, error) {
	if err := s.refreshIssuers(); err != nil {
		return nil, err
	}
	return Issue(s.o.DeviceKey, s.o.Authority, 0, g, s.o.Rand)
}

// Attenuate adds a block to a token this device holds, narrowing it and
// handing it to g.Holder.
func (s *Service) Attenuate(raw []byte, g Grant) (*Token, error) {
	t, err := DecodeToken(raw)
	if err != nil {
		return nil, err
	}
	if _, err := s.Verify(raw); err != nil {
		return nil, err
	}
	return t.Attenuate(s.o.DeviceKey, g, s.o.Rand)
}

// Verify checks a token offline against the issuers this device knows and
// the revocations it has seen.
func (s *Service) Verify(raw []byte) (Verified, error) {
	if err := s.refreshIssuers(); err != nil {
		return Verified{}, err
	}
	return s.ver.VerifyBytes(raw)
}

// refreshIssuers learns the issuer keys of contacts made since the start.
func (s *Service) refreshIssuers() error {
	shared, err := s.o.Contexts.SharedContexts(context.Background())
	if err != nil {
		return err
	}
	for _, c := range shared {
		s.learnIssuer(c)
	}
	return nil
}

// Revoke revokes a block of a token this device's authority issued, and
// with it every token delegated from it.
func (s *Service) Revoke(ctx context.Context, block core.Hash) (Revocation, error) {
	r := Revocation{Issuer: s.o.Authority, Block: block}
	f, err := s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: s.o.Namespace, TypeID: TypeRevocation, Payload: r.Encode()})
	if err != nil {
		return Revocation{}, err
	}
	if _, err := s.o.Journal.Commit(ctx, journal.Txn{Facts: []*journal.SignedFact{f}}); err != nil {
		return Revocation{}, err
	}
	s.revs.Add(r)
	return r, nil
}

// Validators check trust facts on their way into the journal: only a device
// states its own trust, endorsements travel in contexts, and an authority
// revokes only what it issued.
func Validators() map[string]journal.Validator {
	return map[string]journal.Validator{
		TypeTrustEdge: func(f *journal.SignedFact) error {
			e, err := DecodeTrustEdge(f.Payload)
			if err != nil {
				return err
			}
			if e.From != f.Author || f.Namespace.Kind != core.NamespaceAuthority {
				return fmt.Errorf("%s: a device states only its own trust, in its authority's namespace: %w", TypeTrustEdge, core.ErrPermissionDenied)
			}
			return nil
		},
		TypeEndorsement: func(f *journal.SignedFact) error {
			n, err := DecodeEndorsement(f.Payload)
			if err != nil {
				return err
			}
			if n.Edge.From != f.Author || f.Namespace.Kind != core.NamespaceContext {
				return fmt.Errorf("%s: a device endorses only its own edges, in a relational context: %w", TypeEndorsement, core.ErrPermissionDenied)
			}
			return nil
		},
		TypeRevocation: func(f *journal.SignedFact) error {
			r, err := DecodeRevocation(f.Payload)
			if err != nil {
				return err
			}
			if f.Namespace != core.AuthorityNamespace(r.Issuer) {
				return fmt.Errorf("%s: revocations live in the issuing authority's namespace: %w", TypeRevocation, core.ErrPermissionDenied)
			}
			return nil
		},
	}
}

// reducer folds trust facts: per edge the Newer one, per revoked block the
// revocation. Every fold is a join (Newer is a total order), so arrival
// order does not matter.
type reducer struct{}

// Reducer is the journal reducer of trust facts.
func Reducer() journal.Reducer { return reducer{} }

func (reducer) Name() string      { return reducerName }
func (reducer) Commutative() bool { return true }
func (reducer) Handles(t string) bool {
	return t == TypeTrustEdge || t == TypeEndorsement || t == TypeRevocation
}

func (reducer) Key(f *journal.SignedFact) ([]byte, error) {
	switch f.TypeID {
	case TypeTrustEdge:
		e, err := DecodeTrustEdge(f.Payload)
		if err != nil {
			return nil, err
		}
		return append(append([]byte{keyEdge}, e.From[:]...), e.To[:]...), nil
	case TypeEndorsement:
		n, err := DecodeEndorsement(f.Payload)
		if err != nil {
			return nil, err
		}
		return append(append([]byte{keyEndorse}, n.Edge.From[:]...), n.Edge.To[:]...), nil
	case TypeRevocation:
		r, err := DecodeRevocation(f.Payload)
		if err != nil {
			return nil, err
		}
		return append([]byte{keyRevoke}, r.Block[:]...), nil
	}
	return nil, fmt.Errorf("%s is not a trust fact: %w", f.TypeID, core.ErrInternal)
}

func (reducer) Apply(state []byte, f *journal.SignedFact) ([]byte, error) {
	if state == nil || f.TypeID == TypeRevocation {
		return slices.Clone(f.Payload), nil
	}
	switch f.TypeID {
	case TypeTrustEdge:
		old, err := DecodeTrustEdge(state)
		if err != nil {
			return nil, err
		}
		e, err := DecodeTrustEdge(f.Payload)
		if err != nil {
			return nil, err
		}
		if e.Newer(old) {
			return slices.Clone(f.Payload), nil
		}
		return state, nil
	case TypeEndorsement:
		old, err := DecodeEndorsement(state)
		if err != nil {
			return nil, err
		}
		n, err := DecodeEndorsement(f.Payload)
		if err != nil {
			return nil, err
		}
		// A withdrawal of the same edge version wins over its sharing.
		if n.Edge.Newer(old.Edge) || (n.Edge == old.Edge && n.Withdrawn) {
			return slices.Clone(f.Payload), nil
		}
		return state, nil
	}
	return nil, fmt.Errorf("%s is not a trust fact: %w", f.TypeID, core.ErrInternal)
}

// Now is the service's clock, for callers computing expiries.
func (s *Service) Now() time.Time { return s.o.Clock.Now() }

// Authority is the authority this device issues tokens for.
func (s *Service) Authority() core.AuthorityID { return s.o.Authority }

// CheckToken is the guard chain's capability step for a claim that carries a
// token: the token verifies here (signatures, attenuation, expiry,
// revocations, the issuer's epoch) and grants capability to holder in ns.
func (s *Service) CheckToken(token []byte, holder core.DeviceID, capability string, ns core.Namespace) error {
	v, err := s.Verify(token)
	if err != nil {
		return err
	}
	return v.Permits(holder, capability, ns)
}
