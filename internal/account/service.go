// Package account keeps a person's account: the commitment tree of its
// devices (internal/tree) reduced from the tree ops in the account's
// authority namespace, and the device enrollment ceremony that grows it
// (Category C, DESIGN §8 and §10). It is the authority namespace's
// membership source: a device an attested AddLeaf names may write there,
// and the namespace syncs between the account's devices like any shared
// namespace.
//
// It is its own package, not part of internal/ceremony, because the tree
// is a domain with its own state (the reduction, the fate of every op) that
// later issues (groups, key rotation) build on; it borrows ceremony's
// invitation code format with its own kind.
package account

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/session"
	"github.com/aura-p2p/aura/internal/tree"
)

// Sentinel errors callers branch on.
var (
	ErrNoGenesis = fmt.Errorf("the account's genesis is not in this journal: %w", core.ErrFailedPrecondition)
	// ErrThresholdUnsupported: the account's policy needs several devices
	// to attest an op; that needs a FROST group key (not yet in the tree).
	ErrThresholdUnsupported = fmt.Errorf("the account's policy needs several devices to attest a change, and threshold attestation by several devices is not available yet: %w", core.ErrFailedPrecondition)
)

// Journal is what the account needs of the journal.
type Journal interface {
	SignLocal(signer journal.Signer, d journal.Draft) (*journal.SignedFact, error)
	Commit(ctx context.Context, t journal.Txn) ([]journal.Committed, error)
	ViewExt(ctx context.Context, owner string, fn func(s *journal.ExtStore) error) error
	List(ctx context.Context, q journal.ListQuery) ([]journal.StoredFact, string, error)
	Watch(ctx context.Context, opts journal.WatchOptions) (*journal.Subscription, error)
}

// Sessions is what enrollment needs of the choreography runtime.
type Sessions interface {
	Register(protocolName, role string, h session.Handler) error
	Start(ctx context.Context, protocolName string, roles map[string]core.DeviceID, o session.StartOptions) (session.Session, error)
	Wait(ctx context.Context, id session.SessionID) (session.Session, error)
}

// Network tells invitation codes where this device is, and teaches the
// transport where an inviting device is.
type Network interface {
	Addrs() []string
	AddPeer(ctx context.Context, addr string) error
}

// Options configure a Service. Journal, Sessions, Network, Signer,
// DeviceKey, HPKEPub, HPKEPriv, Adopt and Joined are required.
type Options struct {
	Journal  Journal
	Sessions Sessions
	Network  Network
	Signer   journal.Signer
	// DeviceKey attests tree ops and signs invitation codes.
	DeviceKey ed25519.PrivateKey
	// HPKEPub and HPKEPriv are the device's X25519 key, which its leaf
	// holds until its first UpdatePath.
	HPKEPub  []byte
	HPKEPriv []byte
	// Authority is the account this device acts for now.
	Authority core.AuthorityID
	// Adopt returns the transaction step that records another account as
	// this device's own; it commits with the enrollment's facts, so a
	// device that joined is a device of the new account after any crash.
	Adopt func(core.AuthorityID) journal.TxOp
	// Joined is told once the ceremony that made this device a member of
	// another account has ended; the daemon then restarts as that
	// account's device.
	Joined func(core.AuthorityID)
	// Leavable says whether this device may leave its account for another
	// (nil error: it has nothing there that would be left behind).
	Leavable func(ctx context.Context) error
	Clock    core.Clock
	Rand     io.Reader
	Logger   *zap.Logger
}

// Service is this device's view of its account and its side of device
// enrollment.
type Service struct {
	o      Options
	self   core.DeviceID
	closed atomic.Bool

	// mu is held by what writes: maintenance (Maintain) and this
	// device's own changes, across their journal commits. It guards main,
	// the tree those work on, and keys.
	mu   sync.Mutex
	main follower
	keys keyring // the own account's key schedule
	// readMu guards reads, the tree the reads answer from. It is never
	// held across a journal commit, nor taken by anything that holds mu:
	// the membership lookup of every message waits for no fsync. The two
	// trees follow the same facts apart; reduction is incremental, and
	// ops are few.
	readMu sync.Mutex
	reads  follower

	enrolMu  sync.Mutex
	joining  *joinState                      // the one join this device runs
	deciding map[session.SessionID]*decision // joins this device answers
}

// New returns the service and registers its enrollment roles.
func New(o Options) (*Service, error) {
	if o.Journal == nil || o.Sessions == nil || o.Network == nil || o.Signer == nil || o.DeviceKey == nil ||
		len(o.HPKEPub) != 32 || len(o.HPKEPriv) != 32 || o.Adopt == nil || o.Joined == nil {
		return nil, fmt.Errorf("account service: journal, sessions, network, keys, Adopt and Joined are required: %w", core.ErrInternal)
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
	if o.Leavable == nil {
		o.Leavable = func(context.Context) error { return nil }
	}
	s := &Service{o: o, self: o.Signer.DeviceID(), deciding: map[session.SessionID]*decision{}}
	if err := o.Sessions.Register(ProtocolEnrollment, RoleNewDevice, newDeviceHandler{s}); err != nil {
		return nil, err
	}
	if err := o.Sessions.Register(ProtocolEnrollment, RoleDevice, deviceHandler{s}); err != nil {
		return nil, err
	}
	return s, nil
}

// reduced is an authority's tree: its genesis and the reduction of every op
// fact read so far. Ops are few (one per membership or policy change), so
// each use reads the namespace's op facts again and feeds the reducer only
// the new ones; the reducer is incremental.
type reduced struct {
	authority core.AuthorityID
	genesis   *journal.SignedFact
	reducer   *tree.Reducer
	ops       map[tree.OpID]*tree.Op
	facts     map[tree.OpID]*journal.SignedFact
	order     []tree.OpID // in the order first read, for a stable listing
	seen      map[core.FactID]bool
}

// policyOf is the tree policy of a namespace genesis threshold over n
// devices: 1 is any device, n is all of them.
func policyOf(threshold, n int) (tree.Policy, error) {
	switch {
	case threshold <= 1:
		return tree.Any(), nil
	case threshold >= n:
		return tree.All(), nil
	}
	return tree.KOfN(threshold)
}

func (s *Service) load(ctx context.Context, auth core.AuthorityID) (*reduced, error) {
	ns := core.AuthorityNamespace(auth)
	page, _, err := s.o.Journal.List(ctx, journal.ListQuery{Namespace: &ns, TypeID: journal.TypeGenesis, PageSize: 1})
	if err != nil {
		return nil, err
	}
	if len(page) == 0 {
		return nil, fmt.Errorf("account %s: %w", auth, ErrNoGenesis)
	}
	st, err := genesisState(page[0].SignedFact)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", auth, err)
	}
	r := &reduced{
		authority: auth, genesis: page[0].SignedFact,
		ops: map[tree.OpID]*tree.Op{}, facts: map[tree.OpID]*journal.SignedFact{}, seen: map[core.FactID]bool{},
	}
	r.reducer = tree.NewReducer(st, admitted{r})
	return r, nil
}

// admitted attests the ops of a journal's op facts. The journal admits an
// op fact only once validateOp found its attestation to be the fact
// author's signature over the op, so reduction need not verify the
// signature again (it was most of a reduction's time): it checks that the
// op's author leaf, in the state the op applies to, is that fact's author.
// Ed25519 signatures are deterministic, so an op's bytes (and id) have one
// possible author.
type admitted struct{ r *reduced }

// MaxSigners implements tree.Attester: one, as tree.SingleSigner.
func (admitted) MaxSigners() int { return 1 }

// Verify implements tree.Attester.
func (a admitted) Verify(st *tree.State, op *tree.Op, required int) error {
	if required != 1 {
		return fmt.Errorf("%d signers required, a single signature attests one: %w", required, tree.ErrSignersUnsupported)
	}
	id, err := op.ID()
	if err != nil {
		return err
	}
	f := a.r.facts[id]
	leaf, ok := st.Leaf(op.Author)
	if f == nil || !ok || leaf.Device != f.Author {
		return fmt.Errorf("op %s is not attested by the device at leaf %d: %w", id, op.Author, tree.ErrAttestation)
	}
	return nil
}

// genesisState is the tree an authority's genesis fact founds: its members
// as device leaves, in genesis order, under the genesis threshold.
func genesisState(f *journal.SignedFact) (*tree.State, error) {
	g, err := journal.DecodeGenesis(f.Payload)
	if err != nil {
		return nil, err
	}
	leaves := make([]tree.Leaf, len(g.Members))
	for i, m := range g.Members {
		leaves[i] = tree.Leaf{Role: tree.RoleDevice, Device: m.Device, HPKE: m.HPKEKey}
	}
	policy, err := policyOf(int(g.Threshold), len(leaves))
	if err != nil {
		return nil, err
	}
	st, err := tree.Genesis(leaves, policy)
	if err != nil {
		return nil, fmt.Errorf("genesis as a tree: %w", err)
	}
	return st, nil
}

// refresh feeds r the op facts it has not seen, listing the namespace: for
// an account other than this device's own (see follow for that).
func (s *Service) refresh(ctx context.Context, r *reduced) error {
	ns := core.AuthorityNamespace(r.authority)
	token := ""
	for {
		page, next, err := s.o.Journal.List(ctx, journal.ListQuery{Namespace: &ns, TypeID: TypeTreeOp, PageSize: journal.MaxPageSize, PageToken: token})
		if err != nil {
			return err
		}
		for _, f := range page {
			if err := r.feed(f.SignedFact); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		token = next
	}
}

// follower is the own account's tree, following the account's tree-op
// facts as they commit, from seq on: refreshing the tree then costs what
// is new, not a scan of the namespace, so membership lookups can afford it
// on every message.
type follower struct {
	tree *reduced
	ops  *journal.Subscription
	seq  uint64
}

// close ends the follower's watch. The caller holds the follower's lock.
func (f *follower) close() {
	if f.ops != nil {
		f.ops.Close()
		f.ops = nil
	}
}

// follow loads the own account's tree into fl on first use and feeds it the
// op facts committed since the last call, from the journal's watch. It
// only reads the journal. The caller holds fl's lock (s.mu for s.main,
// s.readMu for s.reads).
func (s *Service) follow(ctx context.Context, fl *follower) (*reduced, error) {
	if fl.tree == nil {
		r, err := s.load(ctx, s.o.Authority)
		if err != nil {
			return nil, err
		}
		fl.tree = r
	}
	r := fl.tree
	polled, cancel := context.WithCancel(ctx)
	cancel() // Next returns what is there, and Canceled when nothing is
	for {
		if s.closed.Load() {
			return nil, fmt.Errorf("the account service is closed: %w", core.ErrUnavailable)
		}
		if fl.ops == nil {
			ns := core.AuthorityNamespace(r.authority)
			opts := journal.WatchOptions{Namespace: &ns, TypeID: TypeTreeOp, AfterSeq: fl.seq}
			first := fl.seq == 0
			if first {
				// Watch from now, then list what is stored: a replay
				// from the start would read every fact of the journal.
				// What commits in between comes twice; feed skips it.
				opts = journal.WatchOptions{Namespace: &ns, TypeID: TypeTreeOp, FromNow: true}
			}
			sub, err := s.o.Journal.Watch(ctx, opts)
			if err != nil {
				return nil, err
			}
			fl.ops = sub
			if first {
				if err := s.refresh(ctx, r); err != nil {
					// Watched from now, but what was stored is not
					// all read: the next call lists it again.
					fl.close()
					return nil, err
				}
			}
		}
		f, err := fl.ops.Next(polled)
		switch {
		case err == nil:
			fl.seq = f.Seq
			if err := r.feed(f.SignedFact); err != nil {
				return nil, err
			}
		case errors.Is(err, journal.ErrWatchLagging):
			fl.close()
		case errors.Is(err, context.Canceled) && ctx.Err() == nil:
			return r, nil
		default:
			return nil, err
		}
	}
}

// Close ends the service's watches of the journal. The reads' watch ends
// at once; the writers' once what holds it is done.
func (s *Service) Close() {
	s.closed.Store(true)
	s.readMu.Lock()
	s.reads.close()
	s.readMu.Unlock()
	s.mu.Lock()
	s.main.close()
	s.mu.Unlock()
}

// feed gives the reducer an op fact it has not seen.
func (r *reduced) feed(f *journal.SignedFact) error {
	if r.seen[f.ID] {
		return nil
	}
	op, err := tree.ParseOp(f.Payload)
	if err != nil {
		// The validator admitted it, so this journal's bytes changed
		// under it.
		return fmt.Errorf("tree op fact %s: %w", f.ID, err)
	}
	id, err := op.ID()
	if err != nil {
		return err
	}
	// The fact goes in first: the attester reads its author.
	known := r.ops[id] != nil
	if !known {
		r.ops[id], r.facts[id] = op, f
	}
	// An op rejected at its parent (fate.Err) is an outcome like any other:
	// a member may publish one, and it is listed with its reason.
	if fate, err := r.reducer.Add(op); err != nil && fate.Err == nil {
		if !known {
			delete(r.ops, id)
			delete(r.facts, id)
		}
		return fmt.Errorf("tree op %s: %w", id, err)
	}
	r.seen[f.ID] = true
	if !known {
		r.order = append(r.order, id)
	}
	return nil
}

// own returns the writers' account tree, up to date with the journal.
// The caller holds s.mu.
func (s *Service) own(ctx context.Context) (*reduced, error) {
	return s.follow(ctx, &s.main)
}

// current returns the reads' account tree, up to date with the journal.
// The caller holds s.readMu.
func (s *Service) current(ctx context.Context) (*reduced, error) {
	return s.follow(ctx, &s.reads)
}

// maintained is own, after this device made again its ops that lost and
// advanced its keys: what this device's own changes work on. Reads (Show,
// Key, Members, Devices, SyncSecret) use current instead: they must not
// write, nor wait for a write, nor fail for a fault of the key schedule.
// The caller holds s.mu.
func (s *Service) maintained(ctx context.Context) (*reduced, error) {
	r, err := s.own(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.repropose(ctx, r); err != nil {
		return nil, fmt.Errorf("making lost tree ops again: %w", err)
	}
	if err := s.advanceKeys(ctx, r); err != nil {
		return nil, fmt.Errorf("account key schedule: %w", err)
	}
	return r, nil
}

// Maintain makes this device's lost tree ops again and advances its keys:
// the writes that follow from tree ops. Reads do neither; the daemon calls
// it once per run of tree ops that arrive.
func (s *Service) Maintain(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.maintained(ctx)
	return err
}

// Show returns the account as this device knows it: the tree as the
// journal holds it now, and what became of this device's lost ops as far
// as maintenance has dealt with them.
func (s *Service) Show(ctx context.Context) (*View, error) {
	// What maintenance recorded is read before the tree: a record commits
	// with or after the ops it names, so the tree read next holds them.
	kr, err := s.readKeyring(ctx, false)
	if err != nil {
		return nil, err
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	r, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	return s.view(r, kr.reproposed)
}

// viewOf reduces any authority this journal holds, for the account a
// device just joined (the service's own is still the old one until the
// daemon restarts). It reads a tree of its own, so it takes no lock; the
// re-proposal records are the old account's, so none are shown.
func (s *Service) viewOf(ctx context.Context, auth core.AuthorityID) (*View, error) {
	r, err := s.load(ctx, auth)
	if err != nil {
		return nil, err
	}
	if err := s.refresh(ctx, r); err != nil {
		return nil, err
	}
	return s.view(r, nil)
}

// view is r as an operator sees it, with what became of this device's lost
// ops by reproposed.
func (s *Service) view(r *reduced, reproposed map[tree.OpID]*reproposal) (*View, error) {
	st := r.reducer.State()
	req, err := tree.Required(st.Policy(), st.Devices())
	if err != nil {
		return nil, err
	}
	v := &View{Authority: r.authority, Epoch: st.Epoch(), Root: st.RootCommitment(), Policy: st.Policy().String(), Required: req}
	for i, l := range st.Members() {
		v.Devices = append(v.Devices, Device{Leaf: i, Device: l.Device, Role: l.Role, HPKE: l.HPKE, Self: l.Device == s.self})
	}
	for _, id := range r.order {
		op := r.ops[id]
		fate, _ := r.reducer.Fate(id)
		info := OpInfo{ID: id, Kind: op.Body.Kind(), Author: op.Author, Parent: op.Parent, Status: fate.Status, By: fate.By}
		if fate.Err != nil {
			info.Reason = fate.Err.Error()
		}
		if p := reproposed[id]; p != nil && fate.Status != tree.StatusApplied {
			if p.As != (tree.OpID{}) {
				info.Reproposed = &p.As
			} else {
				info.Reason = "not made again: " + p.Why
			}
		}
		v.Ops = append(v.Ops, info)
	}
	return v, nil
}

// Devices lists the account's devices other than this one: the peers the
// account's namespace syncs with.
func (s *Service) Devices(ctx context.Context) ([]core.DeviceID, error) {
	all, err := s.Members(ctx)
	return slices.DeleteFunc(all, func(d core.DeviceID) bool { return d == s.self }), err
}

// Members lists the account's devices, this one included while it is in
// the tree, sorted: who may send and be sent the account namespace's
// messages now.
func (s *Service) Members(ctx context.Context) ([]core.DeviceID, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	r, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	var out []core.DeviceID
	for _, l := range r.reducer.State().Members() {
		if l.Role == tree.RoleDevice {
			out = append(out, l.Device)
		}
	}
	slices.SortFunc(out, func(a, b core.DeviceID) int { return bytes.Compare(a[:], b[:]) })
	return out, nil
}

// tagSyncSecret derives the account namespace's sync sketch key.
const tagSyncSecret core.Tag = "aura/account/sync/v1"

// SyncSecret keys the account namespace's sync sketches. It comes from the
// genesis nonce, which only holders of the genesis fact (the account's
// devices) know: the account id is public (contacts see it), the nonce is
// not. The tree's group key replaces it once TreeKEM secrets are kept per
// epoch.
func (s *Service) SyncSecret(ctx context.Context) ([]byte, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	r, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	g, err := journal.DecodeGenesis(r.genesis.Payload)
	if err != nil {
		return nil, err
	}
	h := core.TaggedHash(tagSyncSecret, g.Nonce[:])
	return h[:], nil
}

// isFinal reports whether err ends a ceremony with a refusal to tell the
// peer, rather than a fault of this device.
func isFinal(err error) bool {
	return errors.Is(err, core.ErrFailedPrecondition) || errors.Is(err, core.ErrPermissionDenied) ||
		errors.Is(err, core.ErrNotFound) || errors.Is(err, core.ErrAlreadyExists) || errors.Is(err, core.ErrInvalidArgument)
}
