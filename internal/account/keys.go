package account

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/tree"
)

// The account's key schedule (DESIGN §8). Every state of the account's tree
// has an epoch secret (tree.EpochSecret): epoch 0's comes from the genesis
// nonce, which only the account's devices hold; each later one from the one
// before and, for an UpdatePath, the root secret of its path, which only the
// devices it was sealed to can open. Group keys are tree.GroupKey of an
// epoch secret.
//
// A device follows the winning chain of its account's tree and derives each
// epoch's secret as the ops apply: through ops without a path on its own,
// through another device's UpdatePath by opening the path with its path
// keys, through its own from what it persisted before publishing the op. A
// device a removal left out of the next path cannot derive that epoch or
// any later one. A new device is handed the secret of the epoch its AddLeaf
// starts with the enrollment (the welcome).
//
// What is kept, and for how long:
//   - per tree state, the epoch secret and this device's path keys (the
//     private keys of its leaf and of the parent nodes above it it knows),
//     for the last keepEpochs states of the winning chain, in the journal's
//     account extension; older ones, and those of a chain that lost, are
//     deleted and zeroed in memory;
//   - for each UpdatePath this device publishes, the root secret of its
//     path and its new path keys, written in the transaction that stores the
//     op (so they exist before anyone can see the op), deleted once it
//     lost, or once a later update path of this device applied: the
//     latest applied one's stay, because a higher op that reroutes the
//     chain further back than keepEpochs states leaves this device no
//     other way to its own leaf's key (see advanceKeys);
//   - leaf and path secrets never outlive tree.Commit.

// Key schedule errors.
var (
	// ErrNoEpochKey: this device cannot derive the current epoch's secret.
	ErrNoEpochKey = fmt.Errorf("this device cannot derive the account's current group key (a removal's epoch has none until its update path; otherwise this device missed the update that carries it, and 'auractl tree update' on it takes new keys): %w", core.ErrFailedPrecondition)
	// ErrNotInAccount: the device named is not in the account's tree.
	ErrNotInAccount = fmt.Errorf("device is not in the account: %w", core.ErrNotFound)
	// ErrRemoveSelf: a device asked to remove itself.
	ErrRemoveSelf = fmt.Errorf("a device cannot remove itself from its account; remove it from another device of the account: %w", core.ErrFailedPrecondition)
)

// KeyInfo names the account's current group key without revealing it.
type KeyInfo struct {
	Epoch       uint64
	Root        core.Hash
	Fingerprint [16]byte
}

// keepEpochs is how many of the latest states' epoch secrets a device keeps:
// enough to read what a device a few updates behind still sends, few enough
// that a leaked store reveals little history.
const keepEpochs = 8

const (
	tagEpochZero       core.Tag = "aura/account/epoch0/v1"
	tagKeyFingerprint  core.Tag = "aura/account/key-fingerprint/v1"
	labelPathContext            = "aura/account/path/v1"
	labelEpochContext           = "aura/account/epoch/v1"
	purposeFingerprint          = "fingerprint"
	epochKeysVersion            = 1
)

var (
	subKeys    = []byte("keys")    // authority | epoch | commitment → epochKeys
	subPending = []byte("pending") // own UpdatePath op id → epochKeys of its path
)

// epochKeys is one epoch's secret, if this device could derive it, and this
// device's path keys in that state (nil when it holds no leaf there). For a
// pending UpdatePath, secret is the path's root secret.
type epochKeys struct {
	known  bool
	secret [tree.SecretSize]byte
	path   *tree.PathKeys
}

func (k *epochKeys) zero() {
	clear(k.secret[:])
	if k.path != nil {
		k.path.Zero()
	}
}

// Encoding: version (1) | flags (1: 1 secret known, 2 path keys) |
// secret (32, if known) | path keys (tree.AppendPathKeys, if any). It holds
// secrets: it is written to the store and nowhere else.
const (
	flagKnown = 1
	flagPath  = 2
)

func (k *epochKeys) encode() []byte {
	b := []byte{epochKeysVersion, 0}
	if k.known {
		b[1] |= flagKnown
		b = append(b, k.secret[:]...)
	}
	if k.path != nil {
		b[1] |= flagPath
		b = tree.AppendPathKeys(b, k.path)
	}
	return b
}

func decodeEpochKeys(b []byte) (*epochKeys, error) {
	if len(b) < 2 || b[0] != epochKeysVersion || b[1]&^(flagKnown|flagPath) != 0 {
		return nil, fmt.Errorf("stored epoch keys: %w", core.ErrDataLoss)
	}
	k := &epochKeys{known: b[1]&flagKnown != 0}
	flags, rest := b[1], b[2:]
	if k.known {
		if len(rest) < tree.SecretSize {
			return nil, fmt.Errorf("stored epoch keys: %w", core.ErrDataLoss)
		}
		copy(k.secret[:], rest)
		rest = rest[tree.SecretSize:]
	}
	switch {
	case flags&flagPath != 0:
		p, err := tree.ParsePathKeys(rest)
		if err != nil {
			return nil, err
		}
		k.path = p
	case len(rest) != 0:
		return nil, fmt.Errorf("stored epoch keys: %d trailing bytes: %w", len(rest), core.ErrDataLoss)
	}
	return k, nil
}

// stateKey is where the keys of the state a history reached are stored.
func stateKey(auth core.AuthorityID, hist core.Hash) []byte {
	return append(append(make([]byte, 0, 64), auth[:]...), hist[:]...)
}

// tagHistory chains a winning chain's op ids: a state's name does not
// commit to the ops that led to it (two histories can reach the same
// leaves, policy and epoch), while its epoch secret depends on them, so
// keys are kept per history, not per name.
const tagHistory core.Tag = "aura/account/history/v1"

// histories are the history hashes of every state of a chain whose applied
// ops are applied: hist[0] for the genesis, hist[i+1] after applied[i].
func histories(auth core.AuthorityID, applied []tree.OpID) []core.Hash {
	h := make([]core.Hash, len(applied)+1)
	h[0] = core.TaggedHash(tagHistory, auth[:])
	for i, id := range applied {
		h[i+1] = core.TaggedHash(tagHistory, h[i][:], id[:])
	}
	return h
}

// stateContext binds a derivation to the account and a state of its tree.
func stateContext(label string, auth core.AuthorityID, n tree.StateName) []byte {
	b := append([]byte(label), auth[:]...)
	b = binary.BigEndian.AppendUint64(b, n.Epoch)
	return append(b, n.Commitment[:]...)
}

// pathContext is the context an UpdatePath on parent is sealed under.
func pathContext(auth core.AuthorityID, parent tree.StateName) []byte {
	return stateContext(labelPathContext, auth, parent)
}

// nextSecret is the epoch secret of child. An UpdatePath's (path, with its
// commit secret if this device opened it) comes from its path alone: every device the path reaches derives it
// whatever it missed before, which is how a device that was re-added, or
// whose welcome was for a state that lost, gets back in. Every other op's
// chains from the parent's. ok is false when neither is known.
func nextSecret(auth core.AuthorityID, prev *epochKeys, path bool, commit *[tree.SecretSize]byte, child tree.StateName) (s [tree.SecretSize]byte, ok bool, err error) {
	ctx := stateContext(labelEpochContext, auth, child)
	switch {
	case path && commit != nil:
		s, err = tree.EpochSecret([tree.SecretSize]byte{}, commit, ctx)
	case !path && prev != nil && prev.known:
		s, err = tree.EpochSecret(prev.secret, nil, ctx)
	default:
		return s, false, nil
	}
	return s, err == nil, err
}

// keyring is this device's keys of its own account, loaded on first use.
type keyring struct {
	loaded bool
	states map[core.Hash]*epochKeys // by history (see histories)
	// tip is the history of the winning chain's last state when the keys
	// were last advanced.
	tip core.Hash
	// pendingMayLinger: an UpdatePath of this device was stored since the
	// last clean-up of pending keys.
	pendingMayLinger bool
	// reproposed: what became of this device's superseded ops.
	reproposed map[tree.OpID]*reproposal
	// baseline: no re-proposal was ever recorded on this device (it ran a
	// release before re-proposal): the ops that lost before are recorded
	// as such, not made again, which could undo what was done since.
	baseline bool
}

func keysBucket(tx *journal.ExtTx, sub []byte) (*journal.ExtStore, error) {
	b, err := tx.Bucket(extAccount)
	if err != nil {
		return nil, err
	}
	return b.Sub(sub)
}

// loadKeys reads the stored keys of this device's account. The caller holds
// s.mu.
func (s *Service) loadKeys(ctx context.Context) error {
	if s.keys.loaded {
		return nil
	}
	kr, err := s.readKeyring(ctx, true)
	if err != nil {
		return err
	}
	s.keys = kr
	return nil
}

// readKeyring reads the stored keys of this device's account, the epoch
// secrets only if withStates. It only reads the store, so reads use it
// without s.mu; only loadKeys's copy is ever written.
func (s *Service) readKeyring(ctx context.Context, withStates bool) (keyring, error) {
	states := map[core.Hash]*epochKeys{}
	reproposed := map[tree.OpID]*reproposal{}
	baseline := true
	auth := s.o.Authority
	err := s.o.Journal.ViewExt(ctx, extAccount, func(b *journal.ExtStore) error {
		if b == nil {
			return nil
		}
		if rb := b.SubIfExists(subReproposed); rb != nil {
			baseline = false
			err := rb.ForEach(func(k, v []byte) error {
				if len(k) != len(tree.OpID{}) {
					return nil // the baseline mark
				}
				p, err := decodeReproposal(v)
				if err != nil {
					return err
				}
				reproposed[tree.OpID(k)] = p
				return nil
			})
			if err != nil {
				return err
			}
		}
		kb := b.SubIfExists(subKeys)
		if kb == nil || !withStates {
			return nil
		}
		return kb.ForEach(func(k, v []byte) error {
			if len(k) != 64 || !bytes.Equal(k[:32], auth[:]) {
				return nil // another account's, deleted at the next store
			}
			ek, err := decodeEpochKeys(v)
			if err != nil {
				return fmt.Errorf("keys of history %x: %w", k[32:40], err)
			}
			states[core.Hash(k[32:])] = ek
			return nil
		})
	})
	if err != nil {
		for _, k := range states {
			k.zero()
		}
		return keyring{}, err
	}
	return keyring{loaded: true, states: states, pendingMayLinger: true, reproposed: reproposed, baseline: baseline}, nil
}

// pendingKeys reads what this device persisted for its own UpdatePath id.
func (s *Service) pendingKeys(ctx context.Context, id tree.OpID) (*epochKeys, error) {
	var k *epochKeys
	err := s.o.Journal.ViewExt(ctx, extAccount, func(b *journal.ExtStore) error {
		if b == nil {
			return nil
		}
		pb := b.SubIfExists(subPending)
		if pb == nil {
			return nil
		}
		v := pb.Get(id[:])
		if v == nil {
			return nil
		}
		var err error
		k, err = decodeEpochKeys(v)
		return err
	})
	return k, err
}

// advanceKeys derives the keys of every state of r's winning chain past the
// last one this device holds keys for, stores them, and forgets what is no
// longer kept. A state whose secret this device cannot derive is kept with
// its path keys alone: the next update path that reaches them gives the
// secrets back. The caller holds s.mu.
func (s *Service) advanceKeys(ctx context.Context, r *reduced) error {
	if err := s.loadKeys(ctx); err != nil {
		return err
	}
	d, err := s.deriveKeys(ctx, r, s.keys.states)
	if err != nil {
		return err
	}
	maps.Copy(s.keys.states, d.added)
	if err := s.storeKeys(ctx, r, d.hist, d.res, d.added, d.consumed); err != nil {
		return err
	}
	s.keys.tip = d.hist[len(d.hist)-1]
	return nil
}

// derived is what deriveKeys found: the chain's histories and result, the
// keys of the states past those held, and this device's own update paths
// whose pending keys they used.
type derived struct {
	hist     []core.Hash
	res      tree.Result
	added    map[core.Hash]*epochKeys
	consumed []tree.OpID
}

// tip is the keys of the chain's last state.
func (d *derived) tip(held map[core.Hash]*epochKeys) *epochKeys {
	h := d.hist[len(d.hist)-1]
	if k := d.added[h]; k != nil {
		return k
	}
	return held[h]
}

// deriveKeys derives, in memory, the keys of every state of r's winning
// chain past the last one held has keys for. It changes neither held nor
// the store: advanceKeys keeps what it derives, Key forgets it.
func (s *Service) deriveKeys(ctx context.Context, r *reduced, held map[core.Hash]*epochKeys) (*derived, error) {
	chain := r.reducer.Chain()
	res := r.reducer.Result()
	hist := histories(r.authority, res.Applied)
	start := -1
	for k := len(chain) - 1; k >= 0; k-- {
		if held[hist[k]] != nil {
			start = k
			break
		}
	}
	added := map[core.Hash]*epochKeys{}
	keysAt := func(h core.Hash) *epochKeys {
		if k := added[h]; k != nil {
			return k
		}
		return held[h]
	}
	var consumed []tree.OpID
	if start < 0 {
		// The chain shares no state with the keys this device kept: a
		// higher op rerouted it further back than keepEpochs states.
		// Replaying from the genesis would pass this device's own update
		// paths without their keys, and leave it without its own leaf's
		// key; its latest own update path on the chain (its anchor,
		// whose keys it keeps for this) gives them back.
		k, anchor, err := s.anchorKeys(ctx, r, res.Applied, chain)
		if err != nil {
			return nil, err
		}
		if anchor == nil {
			if anchor, err = s.genesisKeys(r, chain[0]); err != nil {
				return nil, err
			}
		}
		start, added[hist[k]] = k, anchor
	}
	for i := start; i < len(res.Applied); i++ {
		id := res.Applied[i]
		next, own, err := s.stepKeys(ctx, r, id, keysAt(hist[i]), chain[i], chain[i+1])
		if err != nil {
			for _, k := range added {
				k.zero()
			}
			return nil, err
		}
		if own {
			consumed = append(consumed, id)
		}
		added[hist[i+1]] = next
	}
	return &derived{hist: hist, res: res, added: added, consumed: consumed}, nil
}

// anchorOf is the latest of this device's own update paths among applied,
// and its index; -1 when there is none.
func (s *Service) anchorOf(r *reduced, applied []tree.OpID) (tree.OpID, int) {
	for i := len(applied) - 1; i >= 0; i-- {
		id := applied[i]
		if _, ok := r.ops[id].Body.(tree.UpdatePathBody); ok && r.facts[id] != nil && r.facts[id].Author == s.self {
			return id, i
		}
	}
	return tree.OpID{}, -1
}

// anchorKeys are the keys of the state this device's latest own update
// path on the chain led to, from the keys it kept of that path, and the
// state's index in the chain; nil and 0 when it has none.
func (s *Service) anchorKeys(ctx context.Context, r *reduced, applied []tree.OpID, chain []*tree.State) (int, *epochKeys, error) {
	id, i := s.anchorOf(r, applied)
	if i < 0 {
		return 0, nil, nil
	}
	k, own, err := s.stepKeys(ctx, r, id, &epochKeys{}, chain[i], chain[i+1])
	if err != nil || !own {
		return 0, nil, err
	}
	return i + 1, k, nil
}

// genesisKeys are epoch 0's: the secret from the genesis nonce, and this
// device's leaf key if it founded the account.
func (s *Service) genesisKeys(r *reduced, g *tree.State) (*epochKeys, error) {
	gen, err := journal.DecodeGenesis(r.genesis.Payload)
	if err != nil {
		return nil, err
	}
	k := &epochKeys{known: true}
	h := core.TaggedHash(tagEpochZero, r.authority[:], gen.Nonce[:])
	copy(k.secret[:], h[:])
	k.path, err = s.ownLeafKeys(g, nil)
	return k, err
}

// ownLeafKeys is path unless the state's leaf of this device holds another
// key, and that key is the device's own HPKE key: then a fresh PathKeys of
// it (a leaf an AddLeaf or the genesis gave this device).
func (s *Service) ownLeafKeys(st *tree.State, path *tree.PathKeys) (*tree.PathKeys, error) {
	leaf, ok := st.FindDevice(s.self)
	if !ok {
		return nil, nil
	}
	l, _ := st.Leaf(leaf)
	if path != nil && path.Leaf() == leaf {
		if pub, ok := path.PublicKey(tree.NodeIndex(2 * leaf)); ok && pub == l.HPKE {
			return path, nil
		}
	}
	if !bytes.Equal(l.HPKE[:], s.o.HPKEPub) {
		return path, nil
	}
	return tree.LeafKeys(leaf, s.o.HPKEPriv)
}

// stepKeys derives child's keys from parent's (prev) through op id; own
// says it was this device's UpdatePath, whose pending keys it used. Only a
// failure to read the store is an error: a path this device cannot open
// leaves the secret unknown. Every state gets its own copy of the path
// keys, so forgetting one state's never touches another's.
func (s *Service) stepKeys(ctx context.Context, r *reduced, id tree.OpID, prev *epochKeys, parent, child *tree.State) (*epochKeys, bool, error) {
	op := r.ops[id]
	var path *tree.PathKeys
	if prev.path != nil {
		path = prev.path.Matching(child)
	}
	var commit *[tree.SecretSize]byte
	own := false
	b, isPath := op.Body.(tree.UpdatePathBody)
	if isPath {
		if me, in := parent.FindDevice(s.self); in && op.Author == me {
			p, err := s.pendingKeys(ctx, id)
			if err != nil {
				return nil, false, err
			}
			if p != nil {
				commit, path, own = &p.secret, p.path, true
			}
		} else if prev.path != nil {
			root, next, err := s.openPath(r, parent, prev.path, &b)
			if err != nil {
				// What still matches the child is kept: this device's
				// own update path takes new keys for the rest.
				s.o.Logger.Warn("another device's update path does not open with this device's keys; 'auractl tree update' on this device takes new ones",
					zap.Stringer("op", id), zap.Error(err))
			} else {
				commit, path = &root, next
				defer clear(root[:])
			}
		}
	}
	path, err := s.ownLeafKeys(child, path)
	if err != nil {
		return nil, false, err
	}
	next := &epochKeys{path: path}
	if _, removal := op.Body.(tree.RemoveLeafBody); !removal {
		if next.secret, next.known, err = nextSecret(r.authority, prev, isPath, commit, child.Name()); err != nil {
			return nil, false, err
		}
	}
	// A removal's epoch, and every one after it up to the next update
	// path, would chain from a secret the removed device holds: they have
	// none, so no key of theirs protects anything the removed device must
	// not read. RemoveDevice stores the update path with the removal.
	return next, own, nil
}

// openPath opens another device's update path with this device's keys.
func (s *Service) openPath(r *reduced, parent *tree.State, keys *tree.PathKeys, b *tree.UpdatePathBody) ([tree.SecretSize]byte, *tree.PathKeys, error) {
	up, err := tree.ParseUpdatePath(b.Path)
	if err != nil {
		return [tree.SecretSize]byte{}, nil, err
	}
	return tree.Process(parent, keys, up, pathContext(r.authority, parent.Name()))
}

// storeKeys writes the new states' keys, deletes the consumed pending keys
// and those of ops that lost or were made again, forgets every state's keys
// but the last keepEpochs of the chain, and drops what another account (one
// this device left) left behind, in one transaction.
func (s *Service) storeKeys(ctx context.Context, r *reduced, hist []core.Hash, res tree.Result, added map[core.Hash]*epochKeys, consumed []tree.OpID) error {
	keep := map[core.Hash]bool{}
	for _, h := range hist[max(0, len(hist)-keepEpochs):] {
		keep[h] = true
	}
	var drop []core.Hash
	for h := range s.keys.states {
		if !keep[h] {
			drop = append(drop, h)
		}
	}
	// The keys of this device's latest own update path on the chain stay
	// (see advanceKeys): they are how it gets back in after a reroute
	// deeper than the states it keeps. Those of its earlier ones go.
	anchor, at := s.anchorOf(r, res.Applied)
	lost := slices.DeleteFunc(slices.Clone(consumed), func(id tree.OpID) bool { return at >= 0 && id == anchor })
	for _, id := range res.Applied[:max(at, 0)] {
		if f := r.facts[id]; f != nil && f.Author == s.self {
			if _, ok := r.ops[id].Body.(tree.UpdatePathBody); ok {
				lost = append(lost, id)
			}
		}
	}
	for _, sup := range res.Superseded {
		lost = append(lost, sup.ID)
	}
	for _, rej := range res.Rejected {
		lost = append(lost, rej.ID)
	}
	for id := range s.keys.reproposed {
		lost = append(lost, id)
	}
	if len(added) == 0 && len(drop) == 0 && len(consumed) == 0 && !s.keys.pendingMayLinger {
		return nil
	}
	auth := r.authority
	_, err := s.o.Journal.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		kb, err := keysBucket(tx, subKeys)
		if err != nil {
			return err
		}
		for h, k := range added {
			if !keep[h] {
				continue
			}
			// bbolt keeps the value until the transaction ends, so it
			// is not cleared here; it is in the store anyway.
			if err := kb.Put(stateKey(auth, h), k.encode()); err != nil {
				return err
			}
		}
		var stale [][]byte
		err = kb.ForEach(func(k, _ []byte) error {
			if len(k) != 64 || !bytes.Equal(k[:32], auth[:]) || !keep[core.Hash(k[32:])] {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := kb.Delete(k); err != nil {
				return err
			}
		}
		pb, err := keysBucket(tx, subPending)
		if err != nil {
			return err
		}
		for _, id := range lost {
			if err := pb.Delete(id[:]); err != nil {
				return err
			}
		}
		return nil
	}}})
	if err != nil {
		return err
	}
	s.keys.pendingMayLinger = false
	for _, h := range drop {
		s.keys.states[h].zero()
		delete(s.keys.states, h)
	}
	return nil
}

// Key names the account's current group key: its epoch, the state it
// belongs to, and a fingerprint devices can compare. It is a read: it takes
// the keys maintenance stored, derives in memory those of the states the
// tree reached since, and forgets them again; it stores nothing and waits
// for no write (Maintain stores them).
func (s *Service) Key(ctx context.Context) (*KeyInfo, error) {
	// The stored keys are read before the tree, so the tree is at least
	// as far along as the chain they were stored for.
	kr, err := s.readKeyring(ctx, true)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, k := range kr.states {
			k.zero()
		}
	}()
	s.readMu.Lock()
	defer s.readMu.Unlock()
	r, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.deriveKeys(ctx, r, kr.states)
	if err != nil {
		return nil, fmt.Errorf("account key schedule: %w", err)
	}
	defer func() {
		for _, k := range d.added {
			k.zero()
		}
	}()
	st := r.reducer.State()
	k := d.tip(kr.states)
	if k == nil || !k.known {
		return nil, fmt.Errorf("epoch %d: %w", st.Epoch(), ErrNoEpochKey)
	}
	gk, err := tree.GroupKey(k.secret, r.authority[:], purposeFingerprint, st.Epoch())
	if err != nil {
		return nil, err
	}
	h := core.TaggedHash(tagKeyFingerprint, gk[:])
	clear(gk[:])
	info := &KeyInfo{Epoch: st.Epoch(), Root: st.RootCommitment()}
	copy(info.Fingerprint[:], h[:])
	return info, nil
}

// UpdatePath sends this device's tree a new path: fresh keys for its leaf
// and every node above it, and so a new epoch secret that only the
// account's current devices can derive (post-compromise security for this
// device, forward secrecy after a removal). It needs no key this device
// holds, so it also brings back one that lost the account's key.
func (s *Service) UpdatePath(ctx context.Context) (*View, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.maintained(ctx)
	if err != nil {
		return nil, err
	}
	op, pend, err := s.updateOp(r, r.reducer.State())
	if err != nil {
		return nil, err
	}
	defer pend.zero()
	if err := s.publish(ctx, []*tree.Op{op}, pend); err != nil {
		return nil, err
	}
	return s.settle(ctx)
}

// RemoveDevice takes another device out of the account: a RemoveLeaf, and
// at once an UpdatePath of this device that the removed one receives
// nothing of, both stored in one transaction, so the removal never stands
// without the rotation that locks the removed device out of later keys.
func (s *Service) RemoveDevice(ctx context.Context, device core.DeviceID) (*View, error) {
	if device == s.self {
		return nil, ErrRemoveSelf
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.maintained(ctx)
	if err != nil {
		return nil, err
	}
	st := r.reducer.State()
	leaf, ok := st.FindDevice(device)
	if !ok {
		return nil, fmt.Errorf("%s: %w", device, ErrNotInAccount)
	}
	me, ok := st.FindDevice(s.self)
	if !ok {
		return nil, fmt.Errorf("this device is no longer in its account's tree: %w", core.ErrFailedPrecondition)
	}
	remove := &tree.Op{Parent: st.Name(), Author: me, Body: tree.RemoveLeafBody{Leaf: leaf}}
	next, err := s.attest(st, remove)
	if err != nil {
		return nil, err
	}
	update, pend, err := s.updateOp(r, next)
	if err != nil {
		return nil, err
	}
	defer pend.zero()
	step, err := removalStep(remove, device)
	if err != nil {
		return nil, err
	}
	if err := s.publish(ctx, []*tree.Op{remove, update}, pend, step); err != nil {
		return nil, err
	}
	s.o.Logger.Info("device removed from the account", zap.Stringer("device", device), zap.Uint64("epoch", next.Epoch()+1))
	return s.settle(ctx)
}

// attest signs op as this device and checks it against st under the tree's
// rules, returning the state it leads to.
func (s *Service) attest(st *tree.State, op *tree.Op) (*tree.State, error) {
	var err error
	if op.Attestation, err = tree.SignSingle(s.o.DeviceKey, op); err != nil {
		return nil, err
	}
	next, err := st.Apply(op, tree.SingleSigner{})
	if errors.Is(err, tree.ErrSignersUnsupported) {
		return nil, ErrThresholdUnsupported
	}
	return next, err
}

// updateOp makes an attested UpdatePath of this device on st, and the keys
// to persist for it (its root secret and this device's new path keys).
func (s *Service) updateOp(r *reduced, st *tree.State) (*tree.Op, *epochKeys, error) {
	me, ok := st.FindDevice(s.self)
	if !ok {
		return nil, nil, fmt.Errorf("this device is no longer in its account's tree: %w", core.ErrFailedPrecondition)
	}
	var leafSecret [tree.SecretSize]byte
	if _, err := io.ReadFull(s.o.Rand, leafSecret[:]); err != nil {
		return nil, nil, fmt.Errorf("leaf secret: %w", err)
	}
	up, path, root, err := tree.Commit(st, me, leafSecret, pathContext(r.authority, st.Name()), nil)
	if err != nil {
		return nil, nil, err
	}
	pend := &epochKeys{known: true, secret: root, path: path}
	clear(root[:])
	enc, err := tree.AppendUpdatePath(nil, up)
	if err != nil {
		pend.zero()
		return nil, nil, err
	}
	op := &tree.Op{Parent: st.Name(), Author: me, Body: tree.UpdatePathBody{Leaf: me, HPKE: up.LeafKey, Path: enc}}
	if _, err := s.attest(st, op); err != nil {
		pend.zero()
		return nil, nil, err
	}
	return op, pend, nil
}

// publish stores ops as facts of the account in one transaction, with the
// pending keys of the update path among them (the last op) and any further
// steps.
func (s *Service) publish(ctx context.Context, ops []*tree.Op, pend *epochKeys, extra ...journal.TxOp) error {
	facts := make([]*journal.SignedFact, len(ops))
	for i, op := range ops {
		payload, err := tree.AppendOp(nil, op)
		if err != nil {
			return err
		}
		if facts[i], err = s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: core.AuthorityNamespace(s.o.Authority), TypeID: TypeTreeOp, Payload: payload}); err != nil {
			return err
		}
	}
	steps := extra
	if pend != nil {
		id, err := ops[len(ops)-1].ID()
		if err != nil {
			return err
		}
		steps = append(steps, func(tx *journal.ExtTx) error {
			pb, err := keysBucket(tx, subPending)
			if err != nil {
				return err
			}
			return pb.Put(id[:], pend.encode())
		})
	}
	_, err := s.o.Journal.Commit(ctx, journal.Txn{Facts: facts, Ops: steps})
	s.keys.pendingMayLinger = true
	return err
}

// settle brings the tree and the keys up to date after this device's own
// ops and returns the view.
func (s *Service) settle(ctx context.Context) (*View, error) {
	r, err := s.maintained(ctx)
	if err != nil {
		return nil, err
	}
	return s.view(r, s.keys.reproposed)
}

// welcome is the secret of the epoch child starts, for the device an AddLeaf
// from the current state to child admits; nil if this device does not hold
// the current epoch's. The caller holds s.mu and has just maintained the
// keys.
func (s *Service) welcome(child *tree.State) (*[tree.SecretSize]byte, error) {
	w, ok, err := nextSecret(s.o.Authority, s.keys.states[s.keys.tip], false, nil, child.Name())
	if err != nil || !ok {
		return nil, err
	}
	return &w, nil
}

// welcomeOp is the transaction step by which a new device stores the
// welcome of the state its AddLeaf started (the end of the chain applied),
// with its leaf key.
func (s *Service) welcomeOp(auth core.AuthorityID, st *tree.State, applied []tree.OpID, w *[tree.SecretSize]byte) (journal.TxOp, error) {
	path, err := s.ownLeafKeys(st, nil)
	if err != nil {
		return nil, err
	}
	hist := histories(auth, applied)
	k := &epochKeys{known: true, secret: *w, path: path}
	return func(tx *journal.ExtTx) error {
		kb, err := keysBucket(tx, subKeys)
		if err != nil {
			return err
		}
		return kb.Put(stateKey(auth, hist[len(hist)-1]), k.encode())
	}, nil
}
