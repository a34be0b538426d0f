package tree

import (
	"fmt"
	"slices"

	"github.com/aura-p2p/aura/internal/core"
)

// Validity. An op applies to a state when
//   - it names the state as its parent (an older epoch is ErrReplayed, any
//     other mismatch ErrWrongParent);
//   - its author is a device leaf of the state (ErrAuthor);
//   - its body is valid there: AddLeaf a leaf with valid keys (ErrInvalidKey,
//     ErrRole) whose device key no leaf holds yet (ErrDuplicateDevice);
//     RemoveLeaf a leaf that exists (ErrNoSuchLeaf), not the last device
//     (ErrLastDevice), and not one the policy still needs
//     (ErrPolicyUnsatisfiable); ChangePolicy a policy the devices can meet
//     (ErrPolicyUnsatisfiable); UpdatePath the author's own leaf
//     (ErrNotOwnLeaf) and a valid HPKE key;
//   - and its attestation is by the signers the state requires (below;
//     ErrSignersUnsupported when the attester cannot check that many,
//     ErrAttestation or the attester's error when it does not verify).
//
// Every valid op moves the tree to the next epoch.
//
// Signers. An op needs Required(policy, devices) signers of the state it
// applies to, with one exception: a ChangePolicy that widens the policy (is
// not AtLeastAsStrict over the current devices: it needs fewer signers now,
// or stops growing with the tree, or is Any) is "approved under the old
// policy" only when every current device attests it, Required(All, n) = n.
// Every policy needs at most n, so a widening needs at least as many signers
// as any op, and strictly more whenever the current policy is not All:
// weakening 2-of-n to Any among three devices takes all three, tightening it
// to All takes two. From All nothing can be stricter than everyone, so there
// a widening needs what every op needs. A refused widening's error wraps
// ErrPolicyWidening as well as the attester's reason.

// Validity errors, besides the state errors (state.go) and ErrOpEncoding.
var (
	// ErrWrongParent: the op's parent is not the state: a state not yet
	// reached, or another state of the same epoch.
	ErrWrongParent = fmt.Errorf("op's parent is not the current tree state: %w", core.ErrFailedPrecondition)
	// ErrReplayed: the op's parent is of an older epoch than the state: it
	// was made on a state the tree has moved past. A device neither signs
	// nor proposes it; it is redone on the current state.
	ErrReplayed = fmt.Errorf("op made on an older epoch: %w", core.ErrAborted)
	// ErrAuthor: the op's author is not a device leaf of its parent state.
	ErrAuthor = fmt.Errorf("op author is not a device of the tree: %w", core.ErrPermissionDenied)
	// ErrNotOwnLeaf: an UpdatePath of a leaf other than its author's.
	ErrNotOwnLeaf = fmt.Errorf("update path of another member's leaf: %w", core.ErrPermissionDenied)
	// ErrPolicyWidening: a weaker policy without the attestation of every
	// device.
	ErrPolicyWidening = fmt.Errorf("policy widening not approved by every device: %w", core.ErrPermissionDenied)
)

// signers is what an op's attestation must show.
type signers struct {
	required int
	widening bool
}

// Apply returns the state op leads to, when op is valid on s (see above);
// s itself never changes.
func (s *State) Apply(op *Op, att Attester) (*State, error) {
	next, need, err := s.transition(op)
	if err != nil {
		return nil, err
	}
	if err := s.attest(op, att, need); err != nil {
		return nil, err
	}
	return next, nil
}

// Validate checks everything Apply checks but the attestation: what a
// device checks before it signs an op, so that it never signs one whose
// parent is not its current state.
func (s *State) Validate(op *Op) error {
	_, _, err := s.transition(op)
	return err
}

// transition checks op against s, but not its attestation, and computes the
// state it leads to and the signers it needs.
func (s *State) transition(op *Op) (*State, signers, error) {
	if op.Parent != s.name {
		if op.Parent.Epoch < s.epoch {
			return nil, signers{}, fmt.Errorf("parent epoch %d, tree at %d: %w", op.Parent.Epoch, s.epoch, ErrReplayed)
		}
		return nil, signers{}, fmt.Errorf("parent %s, tree at %s: %w", op.Parent, s.name, ErrWrongParent)
	}
	if len(op.Attestation) > MaxAttestationBytes {
		return nil, signers{}, fmt.Errorf("attestation of %d bytes, at most %d: %w", len(op.Attestation), MaxAttestationBytes, ErrOpEncoding)
	}
	author, ok := s.Leaf(op.Author)
	if !ok || author.Role != RoleDevice {
		return nil, signers{}, fmt.Errorf("leaf %d: %w", op.Author, ErrAuthor)
	}
	n := s.Devices()
	required, err := Required(s.policy, n)
	if err != nil {
		// Genesis and every op keep the policy satisfiable.
		return nil, signers{}, fmt.Errorf("tree state %s: %w: %w", s.name, core.ErrInternal, err)
	}
	need := signers{required: required}
	var next *State
	switch b := op.Body.(type) {
	case AddLeafBody:
		if err := checkLeaf(&b.Leaf); err != nil {
			return nil, signers{}, err
		}
		if i, dup := s.FindDevice(b.Leaf.Device); dup {
			return nil, signers{}, fmt.Errorf("device %s at leaf %d: %w", b.Leaf.Device, i, ErrDuplicateDevice)
		}
		next, _, err = s.added(&b.Leaf)
	case RemoveLeafBody:
		l, ok := s.Leaf(b.Leaf)
		if !ok {
			return nil, signers{}, fmt.Errorf("leaf %d of %d: %w", b.Leaf, s.width, ErrNoSuchLeaf)
		}
		if l.Role == RoleDevice {
			if n == 1 {
				return nil, signers{}, fmt.Errorf("leaf %d: %w", b.Leaf, ErrLastDevice)
			}
			if _, err := Required(s.policy, n-1); err != nil {
				return nil, signers{}, fmt.Errorf("removing leaf %d: %w", b.Leaf, err)
			}
		}
		next, err = s.withLeaf(b.Leaf, nil)
	case ChangePolicyBody:
		if _, err := Required(b.Policy, n); err != nil {
			return nil, signers{}, fmt.Errorf("new policy: %w", err)
		}
		if !AtLeastAsStrict(b.Policy, s.policy, n) {
			need = signers{required: n, widening: true}
		}
		next, err = s.withPolicy(b.Policy)
	case RotateEpochBody:
		next, err = s.rotated()
	case UpdatePathBody:
		if b.Leaf != op.Author {
			return nil, signers{}, fmt.Errorf("leaf %d updated by leaf %d: %w", b.Leaf, op.Author, ErrNotOwnLeaf)
		}
		if len(b.Path) > MaxPathBytes {
			return nil, signers{}, fmt.Errorf("path of %d bytes, at most %d: %w", len(b.Path), MaxPathBytes, ErrOpEncoding)
		}
		if err := checkHPKEKey(b.HPKE); err != nil {
			return nil, signers{}, err
		}
		keys, err := s.pathKeys(&b)
		if err != nil {
			return nil, signers{}, err
		}
		author.HPKE = b.HPKE
		next, err = s.withPath(b.Leaf, &author, keys)
	default:
		return nil, signers{}, fmt.Errorf("op without a body: %w", ErrOpEncoding)
	}
	if err != nil {
		return nil, signers{}, err
	}
	return next, need, nil
}

// pathKeys are the parent keys an UpdatePath body gives its direct path,
// bottom up, once its path is checked to fit: it parses, it is the author's
// and for the leaf key the body names, it is as long as the tree is high,
// and every key is a usable X25519 key. The ciphertexts are the receivers'
// to check: each opens only its own.
func (s *State) pathKeys(b *UpdatePathBody) ([][PublicKeySize]byte, error) {
	up, err := ParseUpdatePath(b.Path)
	if err != nil {
		return nil, err
	}
	switch {
	case up.Committer != b.Leaf:
		return nil, fmt.Errorf("path of leaf %d in an update of leaf %d: %w", up.Committer, b.Leaf, ErrUpdatePath)
	case up.LeafKey != b.HPKE:
		return nil, fmt.Errorf("path's leaf key is not the update's: %w", ErrUpdatePath)
	case len(up.Nodes) != s.height:
		return nil, fmt.Errorf("path of %d nodes in a tree of %d leaves: %w", len(up.Nodes), s.width, ErrUpdatePath)
	}
	keys := make([][PublicKeySize]byte, len(up.Nodes))
	for i := range up.Nodes {
		if err := checkHPKEKey(up.Nodes[i].PublicKey); err != nil {
			return nil, fmt.Errorf("path node %d: %w", i, err)
		}
		keys[i] = up.Nodes[i].PublicKey
	}
	return keys, nil
}

// attest checks op's attestation against the signers it needs.
func (s *State) attest(op *Op, att Attester, need signers) error {
	var err error
	if most := att.MaxSigners(); need.required > most {
		err = fmt.Errorf("%d signers required, the attester verifies at most %d: %w", need.required, most, ErrSignersUnsupported)
	} else {
		err = att.Verify(s, op, need.required)
	}
	if err != nil && need.widening {
		return fmt.Errorf("%w: %w", ErrPolicyWidening, err)
	}
	return err
}

// Reduction. The op set determines the tree: starting at genesis, among the
// ops that name the current state as their parent and are valid on it, the
// one with the highest OpID wins and is applied; the others are superseded
// by it. Repeat from the new state until no valid op names it. The result
// depends on the set only, never on the order ops arrived in.
//
// Every other op is rejected (invalid on its parent state, which is on the
// winning chain) or pending: its parent is not on the chain, because it has
// not been reached yet (its ancestors have not arrived) or because it lies
// on a branch that lost. A pending op may apply later: when its missing
// ancestors arrive, or when a late, higher sibling re-routes the chain.
//
// That re-routing is inherent in highest-hash-wins: until a sibling's
// arrival is ruled out, every state after a fork is provisional. Two things
// keep it rare: devices sign only ops whose parent is their current state,
// and an op needs the policy's threshold of them. They do not prevent it: a
// set of devices that met the policy at some past state can still attest a
// sibling there, and by varying it, make its OpID the higher one. Finality
// (at most one op per parent, which the consensus ceremonies provide) is
// what ends that; this reduction does not assume it.

// Status is where reduction put an op.
type Status uint8

// Statuses.
const (
	// StatusPending: the op's parent is not on the winning chain.
	StatusPending Status = iota + 1
	// StatusApplied: the op won at its parent and is on the chain.
	StatusApplied
	// StatusSuperseded: the op is valid at its parent, and a higher op won
	// there.
	StatusSuperseded
	// StatusRejected: the op is invalid at its parent.
	StatusRejected
)

func (s Status) String() string {
	switch s {
	case StatusPending:
		return "pending"
	case StatusApplied:
		return "applied"
	case StatusSuperseded:
		return "superseded"
	case StatusRejected:
		return "rejected"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Fate is an op's status, with the op that superseded it or the reason it
// was rejected.
type Fate struct {
	Status Status
	By     OpID  // StatusSuperseded: the winner at the op's parent
	Err    error // StatusRejected: why the op is invalid there
}

// Superseded is an op that lost, and the op it lost to.
type Superseded struct{ ID, By OpID }

// Rejected is an op that is invalid at its parent, and why.
type Rejected struct {
	ID  OpID
	Err error
}

// Result is a reduction: the final state, the ops applied from genesis to
// it in order, and the fate of every other op. Superseded and Rejected are
// in the order of their parents on the chain, each parent's ops by
// descending OpID; Pending by ascending OpID.
type Result struct {
	State      *State
	Applied    []OpID
	Superseded []Superseded
	Rejected   []Rejected
	Pending    []OpID
}

// Reduce reduces ops (in any order; duplicates count once) from genesis,
// verifying attestations with att. It fails only on an op that has no
// encoding (no body, a field over its bound).
func Reduce(genesis *State, ops []*Op, att Attester) (Result, error) {
	r := NewReducer(genesis, att)
	for i, op := range ops {
		if _, _, err := r.insert(op); err != nil {
			return Result{}, fmt.Errorf("op %d: %w", i, err)
		}
	}
	r.reduceFrom(0)
	return r.Result(), nil
}

// Reducer maintains a reduction as ops arrive: after any sequence of Adds,
// its Result is Reduce's over the ops added. It keeps every state of the
// winning chain, so an op whose parent is an earlier state on the chain,
// and which beats the op applied there, re-reduces from that state only;
// any other op costs one validity check at most. It remembers each op's
// verdict, which depends only on the op and its parent state (the state's
// name commits to its contents), so no attestation is verified twice. A
// Reducer is not safe for concurrent use.
type Reducer struct {
	att      Attester
	entries  map[OpID]*entry
	children map[StateName][]*entry // by parent, highest OpID first
	states   []*State               // the winning chain, genesis first
	winners  []*entry               // winners[i] took states[i] to states[i+1]
	index    map[StateName]int      // states[index[name]].name == name
}

// entry is an op the reducer holds, and its verdict once checked.
type entry struct {
	id      OpID
	op      *Op // nil once rejected: a refused op's body is not kept
	parent  StateName
	checked bool
	err     error
}

// NewReducer starts a reduction at genesis, with no ops.
func NewReducer(genesis *State, att Attester) *Reducer {
	return &Reducer{
		att:      att,
		entries:  make(map[OpID]*entry),
		children: make(map[StateName][]*entry),
		states:   []*State{genesis},
		index:    map[StateName]int{genesis.name: 0},
	}
}

// Add folds op into the reduction and returns its fate. The error is the
// reason the op is invalid at its parent, when that parent is on the
// winning chain: a caller must not store or forward such an op. An op whose
// parent is unknown is accepted as pending (its validity cannot be judged
// yet), and a valid op that lost at an earlier state is accepted as
// superseded: other replicas may hold it, and the set they reduce must be
// the same. Adding an op again changes nothing and returns its fate. The
// reducer keeps op: the caller must not modify it afterwards.
func (r *Reducer) Add(op *Op) (Fate, error) {
	e, fresh, err := r.insert(op)
	if err != nil {
		return Fate{}, err
	}
	if k, ok := r.index[e.parent]; ok && fresh {
		if r.verdict(e, r.states[k]) == nil && (k == len(r.winners) || e.id.compare(r.winners[k].id) > 0) {
			r.reduceFrom(k)
		}
	}
	f := r.fate(e)
	return f, f.Err
}

// State is the current state: the end of the winning chain.
func (r *Reducer) State() *State { return r.states[len(r.states)-1] }

// Chain is the winning chain's states, genesis first: Result().Applied[i]
// took Chain()[i] to Chain()[i+1]. The slice is the caller's.
func (r *Reducer) Chain() []*State { return slices.Clone(r.states) }

// Fate is the fate of the op id, if the reducer holds it.
func (r *Reducer) Fate(id OpID) (Fate, bool) {
	e, ok := r.entries[id]
	if !ok {
		return Fate{}, false
	}
	return r.fate(e), true
}

// Result is the reduction of every op added so far.
func (r *Reducer) Result() Result {
	res := Result{State: r.State(), Applied: make([]OpID, len(r.winners))}
	for k, w := range r.winners {
		res.Applied[k] = w.id
		for _, c := range r.children[r.states[k].name] {
			if c == w {
				continue
			}
			if err := r.verdict(c, r.states[k]); err != nil {
				res.Rejected = append(res.Rejected, Rejected{ID: c.id, Err: err})
			} else {
				res.Superseded = append(res.Superseded, Superseded{ID: c.id, By: w.id})
			}
		}
	}
	// Every op at the end of the chain was checked when the chain got there,
	// and none was valid, or it would have been applied.
	for _, c := range r.children[r.State().name] {
		res.Rejected = append(res.Rejected, Rejected{ID: c.id, Err: c.err})
	}
	for _, e := range r.entries {
		if _, ok := r.index[e.parent]; !ok {
			res.Pending = append(res.Pending, e.id)
		}
	}
	slices.SortFunc(res.Pending, OpID.compare)
	return res
}

// insert records op unless the reducer already holds it, and returns its
// entry and whether it is new.
func (r *Reducer) insert(op *Op) (*entry, bool, error) {
	id, err := op.ID()
	if err != nil {
		return nil, false, err
	}
	if e, ok := r.entries[id]; ok {
		return e, false, nil
	}
	e := &entry{id: id, op: op, parent: op.Parent}
	r.entries[id] = e
	sib := r.children[e.parent]
	i, _ := slices.BinarySearchFunc(sib, e, func(a, b *entry) int { return b.id.compare(a.id) })
	r.children[e.parent] = slices.Insert(sib, i, e)
	return e, true, nil
}

// reduceFrom drops the chain after states[k] and extends it again by the
// rule, from the ops held.
func (r *Reducer) reduceFrom(k int) {
	for _, st := range r.states[k+1:] {
		delete(r.index, st.name)
	}
	clear(r.states[k+1:])
	r.states, r.winners = r.states[:k+1], r.winners[:k]
	for {
		st := r.State()
		var next *State
		var w *entry
		for _, c := range r.children[st.name] {
			if n, err := r.next(c, st); err == nil {
				next, w = n, c
				break
			}
		}
		if w == nil {
			return
		}
		r.winners = append(r.winners, w)
		r.states = append(r.states, next)
		r.index[next.name] = len(r.states) - 1
	}
}

// next is the state e's op leads to from st, its parent, or the op's
// verdict. It verifies the attestation the first time only.
func (r *Reducer) next(e *entry, st *State) (*State, error) {
	if e.checked && e.err != nil {
		return nil, e.err
	}
	n, need, err := st.transition(e.op)
	if err == nil && !e.checked {
		err = st.attest(e.op, r.att, need)
	}
	if !e.checked {
		e.checked, e.err = true, err
		if err != nil {
			e.op = nil
		}
	}
	return n, err
}

// verdict is nil when e's op is valid on st, its parent, or why not.
func (r *Reducer) verdict(e *entry, st *State) error {
	if e.checked {
		return e.err
	}
	_, err := r.next(e, st)
	return err
}

// fate classifies e on the current chain.
func (r *Reducer) fate(e *entry) Fate {
	k, ok := r.index[e.parent]
	if !ok {
		return Fate{Status: StatusPending}
	}
	if k < len(r.winners) && r.winners[k] == e {
		return Fate{Status: StatusApplied}
	}
	if err := r.verdict(e, r.states[k]); err != nil {
		return Fate{Status: StatusRejected, Err: err}
	}
	// A valid op at the end of the chain would have been applied, so e's
	// parent has a winner.
	return Fate{Status: StatusSuperseded, By: r.winners[k].id}
}
