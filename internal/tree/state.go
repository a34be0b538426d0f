package tree

import (
	"crypto/ecdh"
	"encoding/binary"
	"fmt"
	"iter"

	"github.com/aura-p2p/aura/internal/core"
	fp "github.com/cloudflare/circl/math/fp25519"
)

// Tree state. A State is one version of the tree: its epoch, its leaves and
// its policy. States are immutable: applying an op returns a new State that
// shares every subtree the op did not touch with its parent (path copying),
// so a replica can keep every state of its winning chain (the reducer does,
// to re-reduce from the point where a late op changes the winner) for the
// cost of log2(n)+1 nodes each.
//
// Commitments (SHA-256 under a tag per use, core.TaggedHash):
//
//	leaf   = H("aura/tree/leaf/v1", role (1) | device key (32) | HPKE key (32))
//	blank  = H("aura/tree/leaf/v1", "blank")
//	branch = H("aura/tree/branch/v1", left (32) | right (32))
//	keyed  = H("aura/tree/branch/keyed/v1", left (32) | right (32) | HPKE key (32))
//	root   = H("aura/tree/root/v1", epoch (8) | leaf count (4) | policy | top (32))
//
// where top is the commitment of the root node (a branch, or the only leaf of
// a one-leaf tree), integers are big-endian and policy is AppendPolicy's
// encoding (2 or 4 bytes, self-delimiting). The blank and leaf preimages
// differ in length, so they cannot collide under the one tag. A branch is
// keyed once an UpdatePath has given its node an HPKE public key (the key
// schedule's parent keys, see keys.go); AddLeaf and RemoveLeaf blank the
// direct path of the leaf they touch, and a blank branch keeps the first
// form, so the commitments of trees that never saw an UpdatePath are those
// of the version before parent keys.
//
// The tree has one policy, committed once at the root: the account's
// threshold over its devices. Per-branch policies (RFC-style subtrees with
// their own threshold, e.g. for guardians) would need ops that name a branch
// and signers scoped to it, which nothing uses yet; they will come with a new
// branch tag version, not a reinterpretation of this one.
//
// The epoch is in the root commitment, so the commitment alone already names
// the state; (Epoch, RootCommitment) is the name ops use as their parent.
// Commitments bind contents, not history: two different chains of ops that
// end in the same leaves, policy and epoch end in the same name, and an op
// made on one is valid on the other, since the two states are equal in
// every way the op's validity depends on.

// Domain-separation tags of the tree's commitments and ops (DESIGN §4).
const (
	TagLeaf      core.Tag = "aura/tree/leaf/v1"
	TagBranch    core.Tag = "aura/tree/branch/v1"
	TagKeyed     core.Tag = "aura/tree/branch/keyed/v1"
	TagRoot      core.Tag = "aura/tree/root/v1"
	TagOp        core.Tag = "aura/tree/op/v1"
	TagOpSigning core.Tag = "aura/tree/op/signing/v1"
)

// Role is what a leaf is: one of the account's devices, or a guardian.
// Policies count devices only: guardians take part in recovery, not in the
// day-to-day attestation of ops.
type Role uint8

// Roles, numbered as encoded; 0 is unused so zeroed bytes never parse.
const (
	RoleDevice   Role = 1
	RoleGuardian Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleDevice:
		return "device"
	case RoleGuardian:
		return "guardian"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Leaf is a member's entry in the tree: its role, its Ed25519 signing key
// (the DeviceID) and its X25519 key for receiving path secrets (HPKE).
type Leaf struct {
	Role   Role
	Device core.DeviceID
	HPKE   [32]byte
}

// leafEncodingSize is the size of a leaf's canonical encoding.
const leafEncodingSize = 1 + 32 + 32

// appendLeaf appends the leaf's canonical encoding, the preimage of its
// commitment and its form inside an AddLeaf op.
func appendLeaf(dst []byte, l *Leaf) []byte {
	dst = append(dst, byte(l.Role))
	dst = append(dst, l.Device[:]...)
	return append(dst, l.HPKE[:]...)
}

// State errors. Each wraps a core sentinel; ops refused for one of them
// change nothing.
var (
	// ErrInvalidKey: a leaf's device key is not a canonical encoding of an
	// Ed25519 point of large order, or its HPKE key not a canonical X25519
	// public key of large order (the all-zero key included).
	ErrInvalidKey = fmt.Errorf("invalid leaf key: %w", core.ErrInvalidArgument)
	// ErrRole: a leaf role other than device or guardian.
	ErrRole = fmt.Errorf("invalid leaf role: %w", core.ErrInvalidArgument)
	// ErrDuplicateDevice: a device key that another leaf already holds.
	ErrDuplicateDevice = fmt.Errorf("device already in the tree: %w", core.ErrAlreadyExists)
	// ErrNoDevice: a genesis without a device leaf.
	ErrNoDevice = fmt.Errorf("tree without a device: %w", core.ErrInvalidArgument)
	// ErrLastDevice: a removal that would leave the tree without a device,
	// and so without anyone able to attest another op.
	ErrLastDevice = fmt.Errorf("removal of the last device: %w", core.ErrFailedPrecondition)
	// ErrNoSuchLeaf: a leaf index that is outside the tree or blank.
	ErrNoSuchLeaf = fmt.Errorf("no such leaf: %w", core.ErrNotFound)
	// ErrTreeFull: an addition to a full tree of MaxLeaves leaves.
	ErrTreeFull = fmt.Errorf("tree is full: %w", core.ErrResourceExhausted)
)

// StateName names a tree state: its epoch and root commitment. Ops name
// their parent state by it.
type StateName struct {
	Epoch      uint64
	Commitment core.Hash
}

func (n StateName) String() string { return fmt.Sprintf("%d/%s", n.Epoch, n.Commitment) }

// State is one immutable version of the tree. Build the first with Genesis
// and the others with Apply; the zero State is not usable.
type State struct {
	epoch  uint64
	width  uint32 // leaf count, a power of two
	height int    // log2(width)
	root   *subtree
	policy Policy
	name   StateName
}

// subtree is a node of the persistent tree: a leaf (left and right nil;
// leaf nil when blank) or a branch. Nodes are never modified once built,
// which is what lets states share them.
type subtree struct {
	hash        core.Hash
	left, right *subtree
	leaf        *Leaf
	key         *[PublicKeySize]byte // a branch's HPKE public key; nil when blank
	occupied    uint32               // non-blank leaves below
	devices     uint32               // RoleDevice leaves below
}

// Genesis is the first state of a tree, at epoch 0: the founding leaves in
// order from leaf 0, in a tree as wide as the next power of two, under the
// policy. It needs at least one device, distinct device keys, valid keys,
// and a policy the devices can meet.
func Genesis(leaves []Leaf, policy Policy) (*State, error) {
	if len(leaves) > MaxLeaves {
		return nil, fmt.Errorf("%d founding leaves: %w", len(leaves), ErrTreeFull)
	}
	seen := make(map[core.DeviceID]int, len(leaves))
	for i := range leaves {
		if err := checkLeaf(&leaves[i]); err != nil {
			return nil, fmt.Errorf("founding leaf %d: %w", i, err)
		}
		if j, dup := seen[leaves[i].Device]; dup {
			return nil, fmt.Errorf("founding leaves %d and %d: %w", j, i, ErrDuplicateDevice)
		}
		seen[leaves[i].Device] = i
	}
	height := 0
	for 1<<height < len(leaves) {
		height++
	}
	blanks := blankSubtrees(height)
	level := make([]*subtree, 1<<height)
	for i := range level {
		if i < len(leaves) {
			l := leaves[i]
			level[i] = leafSubtree(&l)
		} else {
			level[i] = blanks[0]
		}
	}
	for h := 1; h <= height; h++ {
		for i := range len(level) / 2 {
			l, r := level[2*i], level[2*i+1]
			if l == blanks[h-1] && r == blanks[h-1] {
				level[i] = blanks[h]
			} else {
				level[i] = branchSubtree(l, r)
			}
		}
		level = level[:len(level)/2]
	}
	s := &State{width: 1 << height, height: height, root: level[0], policy: policy}
	if s.root.devices == 0 {
		return nil, ErrNoDevice
	}
	if _, err := Required(policy, int(s.root.devices)); err != nil {
		return nil, fmt.Errorf("genesis policy: %w", err)
	}
	s.seal()
	return s, nil
}

// Epoch is the state's epoch: 0 at genesis, one more with every applied op.
func (s *State) Epoch() uint64 { return s.epoch }

// Policy is the tree's threshold policy over its devices.
func (s *State) Policy() Policy { return s.policy }

// Leaves is the leaf count, blank leaves included: a power of two.
func (s *State) Leaves() uint32 { return s.width }

// Devices is the number of device leaves, the n the policy is read against.
func (s *State) Devices() int { return int(s.root.devices) }

// RootCommitment is the commitment to the whole state (see above).
func (s *State) RootCommitment() core.Hash { return s.name.Commitment }

// Name is the state's (epoch, root commitment).
func (s *State) Name() StateName { return s.name }

// Leaf is leaf i, or false when i is blank or outside the tree.
func (s *State) Leaf(i LeafIndex) (Leaf, bool) {
	if uint32(i) >= s.width {
		return Leaf{}, false
	}
	n := s.root
	for h := s.height - 1; h >= 0; h-- {
		if uint32(i)>>h&1 == 0 {
			n = n.left
		} else {
			n = n.right
		}
	}
	if n.leaf == nil {
		return Leaf{}, false
	}
	return *n.leaf, true
}

// Members lists the non-blank leaves in index order.
func (s *State) Members() iter.Seq2[LeafIndex, Leaf] {
	return func(yield func(LeafIndex, Leaf) bool) {
		s.root.walk(s.height, 0, yield)
	}
}

// FindDevice is the leaf holding device key d, if any.
func (s *State) FindDevice(d core.DeviceID) (LeafIndex, bool) {
	for i, l := range s.Members() {
		if l.Device == d {
			return i, true
		}
	}
	return 0, false
}

// NodeKey is the HPKE public key of node x (KEMView): a leaf's HPKE key, or
// the key the last UpdatePath through a parent node gave it; false for a
// blank node or one outside the tree.
func (s *State) NodeKey(x NodeIndex) ([]byte, bool) {
	if checkNode(x, s.width) != nil {
		return nil, false
	}
	lo, _ := span(x)
	first := uint32(lo / 2)
	n := s.root
	for h := s.height - 1; h >= Level(x); h-- {
		if first>>h&1 == 0 {
			n = n.left
		} else {
			n = n.right
		}
	}
	switch {
	case n.leaf != nil:
		k := n.leaf.HPKE
		return k[:], true
	case n.key != nil:
		k := *n.key
		return k[:], true
	}
	return nil, false
}

// walk yields the non-blank leaves of the subtree of height h whose first
// leaf is first; it skips empty subtrees without descending.
func (n *subtree) walk(h int, first uint32, yield func(LeafIndex, Leaf) bool) bool {
	switch {
	case n.occupied == 0:
		return true
	case h == 0:
		return yield(LeafIndex(first), *n.leaf)
	}
	return n.left.walk(h-1, first, yield) && n.right.walk(h-1, first+1<<(h-1), yield)
}

// withLeaf is s with leaf i replaced (nil blanks it) and the epoch
// advanced; the tree must already be wide enough.
func (s *State) withLeaf(i LeafIndex, l *Leaf) (*State, error) {
	next, err := s.successor()
	if err != nil {
		return nil, err
	}
	next.root = setLeaf(s.root, s.height, uint32(i), l)
	next.seal()
	return next, nil
}

// withPath is s with leaf i replaced by l and its direct path keyed with
// keys, bottom up, the epoch advanced.
func (s *State) withPath(i LeafIndex, l *Leaf, keys [][PublicKeySize]byte) (*State, error) {
	if len(keys) != s.height {
		return nil, fmt.Errorf("%d path keys for a direct path of %d: %w", len(keys), s.height, ErrUpdatePath)
	}
	next, err := s.successor()
	if err != nil {
		return nil, err
	}
	next.root = setPath(s.root, s.height, uint32(i), l, keys)
	next.seal()
	return next, nil
}

// withPolicy is s under policy p, the epoch advanced.
func (s *State) withPolicy(p Policy) (*State, error) {
	next, err := s.successor()
	if err != nil {
		return nil, err
	}
	next.policy = p
	next.seal()
	return next, nil
}

// rotated is s at the next epoch, otherwise unchanged.
func (s *State) rotated() (*State, error) {
	next, err := s.successor()
	if err != nil {
		return nil, err
	}
	next.seal()
	return next, nil
}

// added is s with l in its first blank leaf, doubling the tree first when it
// is full (the new right half blank), and the epoch advanced.
func (s *State) added(l *Leaf) (*State, LeafIndex, error) {
	base := s
	if s.root.occupied == s.width {
		if s.width == MaxLeaves {
			return nil, 0, ErrTreeFull
		}
		blanks := blankSubtrees(s.height)
		base = &State{
			epoch:  s.epoch,
			width:  2 * s.width,
			height: s.height + 1,
			root:   branchSubtree(s.root, blanks[s.height]),
			policy: s.policy,
		}
	}
	i := base.firstBlank()
	next, err := base.withLeaf(i, l)
	if err != nil {
		return nil, 0, err
	}
	return next, i, nil
}

// firstBlank is the lowest blank leaf; the tree must have one.
func (s *State) firstBlank() LeafIndex {
	var i uint32
	n := s.root
	for h := s.height; h > 0; h-- {
		if n.left.occupied < 1<<(h-1) {
			n = n.left
		} else {
			n = n.right
			i |= 1 << (h - 1)
		}
	}
	return LeafIndex(i)
}

// successor is a copy of s at the next epoch, not yet sealed.
func (s *State) successor() (*State, error) {
	e, err := core.Epoch(s.epoch).Next()
	if err != nil {
		return nil, fmt.Errorf("tree at epoch %d: %w", s.epoch, err)
	}
	next := *s
	next.epoch = uint64(e)
	return &next, nil
}

// seal computes the root commitment, once the state is complete.
func (s *State) seal() {
	var hdr [8 + 4 + 4]byte
	binary.BigEndian.PutUint64(hdr[:], s.epoch)
	binary.BigEndian.PutUint32(hdr[8:], s.width)
	b := AppendPolicy(hdr[:12], s.policy)
	s.name = StateName{
		Epoch:      s.epoch,
		Commitment: core.TaggedHash(TagRoot, b, s.root.hash[:]),
	}
}

// setLeaf is n (a subtree of height h) with its leaf i replaced by l,
// copying the nodes on i's path and sharing the rest.
func setLeaf(n *subtree, h int, i uint32, l *Leaf) *subtree {
	if h == 0 {
		return leafSubtree(l)
	}
	if i>>(h-1)&1 == 0 {
		return branchSubtree(setLeaf(n.left, h-1, i, l), n.right)
	}
	return branchSubtree(n.left, setLeaf(n.right, h-1, i, l))
}

// setPath is setLeaf that keys the branches it copies: the one at height h
// with keys[h-1].
func setPath(n *subtree, h int, i uint32, l *Leaf, keys [][PublicKeySize]byte) *subtree {
	if h == 0 {
		return leafSubtree(l)
	}
	if i>>(h-1)&1 == 0 {
		return keyedSubtree(setPath(n.left, h-1, i, l, keys), n.right, &keys[h-1])
	}
	return keyedSubtree(n.left, setPath(n.right, h-1, i, l, keys), &keys[h-1])
}

func keyedSubtree(l, r *subtree, key *[PublicKeySize]byte) *subtree {
	k := *key
	return &subtree{
		hash:     core.TaggedHash(TagKeyed, l.hash[:], r.hash[:], k[:]),
		left:     l,
		right:    r,
		key:      &k,
		occupied: l.occupied + r.occupied,
		devices:  l.devices + r.devices,
	}
}

func leafSubtree(l *Leaf) *subtree {
	if l == nil {
		return &subtree{hash: core.TaggedHash(TagLeaf, []byte("blank"))}
	}
	var b [leafEncodingSize]byte
	n := &subtree{hash: core.TaggedHash(TagLeaf, appendLeaf(b[:0], l)), leaf: l, occupied: 1}
	if l.Role == RoleDevice {
		n.devices = 1
	}
	return n
}

func branchSubtree(l, r *subtree) *subtree {
	return &subtree{
		hash:     core.TaggedHash(TagBranch, l.hash[:], r.hash[:]),
		left:     l,
		right:    r,
		occupied: l.occupied + r.occupied,
		devices:  l.devices + r.devices,
	}
}

// blankSubtrees are the empty subtrees of heights 0 to h, each built from
// the one below, so that a new blank half costs h hashes.
func blankSubtrees(h int) []*subtree {
	b := make([]*subtree, h+1)
	b[0] = leafSubtree(nil)
	for i := 1; i <= h; i++ {
		b[i] = branchSubtree(b[i-1], b[i-1])
	}
	return b
}

// checkLeaf checks the role and both keys of a leaf.
func checkLeaf(l *Leaf) error {
	if l.Role != RoleDevice && l.Role != RoleGuardian {
		return fmt.Errorf("%s: %w", l.Role, ErrRole)
	}
	if err := checkDeviceKey(l.Device); err != nil {
		return err
	}
	return checkHPKEKey(l.HPKE)
}

// Key checks. Both refuse non-canonical encodings, so that each key has one
// encoding and one commitment, and points of small order: a small-order
// Ed25519 key verifies signatures nobody made (with probability 1/8 per
// forgery attempt), and a small-order X25519 key makes every shared secret
// with it predictable. The small-order points of both curves are few and
// known, so a table check replaces a scalar multiplication: leaves are
// checked for every AddLeaf and UpdatePath the reducer considers.

// edwardsD is d = -121665/121666 of edwards25519, little-endian.
var edwardsD = fp.Elt{
	0xa3, 0x78, 0x59, 0x13, 0xca, 0x4d, 0xeb, 0x75,
	0xab, 0xd8, 0x41, 0x41, 0x4d, 0x0a, 0x70, 0x00,
	0x98, 0xe8, 0x79, 0x77, 0x79, 0x40, 0xc7, 0x8c,
	0x73, 0xfe, 0x6f, 0x2b, 0xee, 0x6c, 0x03, 0x52,
}

// edwardsSmallOrderY are the y coordinates of edwards25519's eight points
// of order dividing 8, little-endian: 1 (the identity), p-1 (order 2), 0
// (order 4), and ±y8 (order 8).
var edwardsSmallOrderY = [5][32]byte{
	{0x01},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	{},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
}

// x25519SmallOrderU are the canonical u coordinates of Curve25519's points
// (and its twist's) of small order, little-endian, as in libsodium's
// blocklist: 0, 1, p-1 and the two of order 8.
var x25519SmallOrderU = [5][32]byte{
	{},
	{0x01},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
	{0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
		0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
}

// checkDeviceKey decodes k as RFC 8032 §5.1.3 does: y (the low 255 bits)
// must be below p, and (y²-1)/(dy²+1) a square, whose root is x with the
// sign of the top bit. x = 0 only for y = ±1, which the small-order table
// already refuses, so no sign check remains.
func checkDeviceKey(k core.DeviceID) error {
	var y fp.Elt
	copy(y[:], k[:])
	y[31] &= 0x7f
	if !canonical(y) {
		return fmt.Errorf("device key %s: y not reduced: %w", k, ErrInvalidKey)
	}
	for i := range edwardsSmallOrderY {
		if [32]byte(y) == edwardsSmallOrderY[i] {
			return fmt.Errorf("device key %s: small order: %w", k, ErrInvalidKey)
		}
	}
	var one, y2, u, v, x fp.Elt
	fp.SetOne(&one)
	fp.Sqr(&y2, &y)
	fp.Sub(&u, &y2, &one)
	fp.Mul(&v, &y2, &edwardsD)
	fp.Add(&v, &v, &one)
	if !fp.InvSqrt(&x, &u, &v) {
		return fmt.Errorf("device key %s: not on the curve: %w", k, ErrInvalidKey)
	}
	return nil
}

// checkHPKEKey accepts a canonical X25519 public key (top bit clear, u below
// p) of large order. X25519 ignores the top bit, so a set one would be a
// second encoding of the same key.
func checkHPKEKey(k [32]byte) error {
	if k[31]&0x80 != 0 || !canonical(fp.Elt(k)) {
		return fmt.Errorf("HPKE key %x: not canonical: %w", k, ErrInvalidKey)
	}
	for i := range x25519SmallOrderU {
		if k == x25519SmallOrderU[i] {
			return fmt.Errorf("HPKE key %x: small order: %w", k, ErrInvalidKey)
		}
	}
	if _, err := ecdh.X25519().NewPublicKey(k[:]); err != nil {
		return fmt.Errorf("HPKE key %x: %v: %w", k, err, ErrInvalidKey)
	}
	return nil
}

// canonical reports whether e (top bit clear) is below p.
func canonical(e fp.Elt) bool {
	r := e
	fp.Modp(&r)
	return r == e
}
