package tree

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/aura-p2p/aura/internal/core"
)

// The key schedule: TreeKEM path secrets (RFC 9420 §7.4–7.6) over the array
// tree, for forward secrecy and post-compromise security of group keys.
//
// Every non-blank node of the tree has an HPKE key pair. Its public key is in
// the tree; its private key is known exactly to the members whose leaves sit
// under the node. A commit rekeys the committer's leaf and its whole direct
// path from one fresh leaf secret:
//
//	path_secret[0]   = leaf secret (drawn by the caller)
//	path_secret[i+1] = DeriveSecret(path_secret[i], "path")
//	key pair of the leaf (i = 0) or of DirectPath[i-1] =
//	                   DeriveKeyPair(DeriveSecret(path_secret[i], "node"))
//	root secret      = DeriveSecret(path_secret[log2 n], "path")
//
// (the root secret is RFC 9420's commit_secret). path_secret[i+1] is sealed
// with HPKE to each node of the resolution of Copath[i], the subtree that
// does not contain the committer, so each member can open exactly one
// ciphertext: the one to the highest node it holds below the lowest common
// ancestor with the committer. From there it derives the rest of the path
// upwards and so the same root secret. That is log2(n) ciphertexts in a
// tree without blanks, and at most n-1 in one full of them.
//
// Forward secrecy: a member left out of every resolution (the excluded leaves
// of Commit, and every parent above them, treated as blank) receives no
// ciphertext and holds no key of the new path, so it learns nothing of the
// new root secret or of any later one. Post-compromise security: a member's
// own commit replaces every private key it held with ones derived from a
// fresh leaf secret, so an attacker who copied its keys loses the group from
// the next epoch on.
//
// Differences from RFC 9420. There are no unmerged leaves: the tree must
// blank the direct path of a leaf it adds (as draft-era TreeKEM did), so
// every non-blank parent's private key is known to all the leaves below it,
// and the next commit reaches the new member through the resulting blank
// resolutions. The direct path is not filtered: every node of it gets a new
// key even when its copath subtree is empty, which keeps each UpdatePath
// log2(n) nodes long. Each ciphertext names the node it is sealed to, so a
// receiver needs neither the committer's excluded set nor its resolution.
//
// The suite is HPKE DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
// ChaCha20-Poly1305 (the HPKE suite of MLS cipher suite 0x0003, and the one
// the ceremony package already seals context secrets with): ChaCha20-Poly1305
// is constant-time and fast in software on every platform, including phones
// and boards without AES instructions, while on 32-byte plaintexts the AEAD
// is noise next to the X25519 operations that dominate the cost. The HPKE
// info of each ciphertext binds the caller's context (which must name the
// group or account and the epoch, e.g. the tree state's parent), the
// committer, the direct-path node and the recipient node, so a ciphertext
// lifted into another group, epoch or position does not open.
//
// Cost. X25519 scalar multiplications are nearly all of it: one per key
// pair derived and two per seal, so 31 for a commit to 1,024 leaves without
// blanks, and a receiver's one to open plus one per key pair from the
// common ancestor up. They are independent once the path secrets (a cheap
// HKDF chain) are known, and Commit and Process spread them over the CPUs.
//
// Randomness. Leaf secrets come from the caller, which draws them from its
// injected source; HPKE's encapsulation keys are drawn by crypto/hpke from
// crypto/rand, which it does not let a caller replace. Nothing reads a clock.
//
// Secrets, and how long they live.
//   - The leaf secret is the caller's; Commit clears its own copy.
//   - Path secrets exist only inside Commit and Process, and are cleared
//     before they return. What must be persisted before an op is published is
//     the committer's new PathKeys and root secret, from which nothing else of
//     the path is needed.
//   - A member keeps its PathKeys: the private keys of its leaf and of the
//     parent nodes above it. Each is kept until the next update path through
//     its node replaces it. Commit and Process return a new PathKeys and leave
//     the old one alone, because the op may still lose in reduction; the
//     caller calls Zero on the old one once the op's state is adopted. A key
//     of a node the tree has since blanked stays until a path rekeys the node;
//     nobody encrypts to a blank node, so it opens nothing new.
//   - The root secret of an epoch is the caller's; it is needed while the
//     epoch's group keys are (GroupKey), and the caller clears it when it
//     retires them.
//
// Clearing is best effort at the layer this package owns: crypto/hpke,
// crypto/ecdh and crypto/hkdf make private copies of keys and secrets in
// heap objects that nothing can clear before the garbage collector reuses
// them, and Go may copy array values on the stack.

const (
	// SecretSize is the size of leaf, path and root secrets and of group keys.
	SecretSize = 32
	// PublicKeySize is the size of an X25519 public key (and private key).
	PublicKeySize = 32
	// SealedSize is one sealed path secret: the HPKE encapsulated key (32
	// bytes), then the 32-byte path secret under ChaCha20-Poly1305 (with its
	// 16-byte tag).
	SealedSize = 32 + SecretSize + 16
	// MaxPathCiphertexts bounds the ciphertexts of one UpdatePath: enough for
	// a tree of 65,536 leaves however many of its nodes are blank, and about
	// 5.5 MB encoded, which bounds what a peer's UpdatePath can make a parser
	// allocate or a receiver scan.
	MaxPathCiphertexts = 1 << 16
	// maxPathDepth is log2(MaxLeaves): no direct path is longer.
	maxPathDepth = 31
)

// Domain-separation labels (DESIGN §4).
const (
	labelPath     = "aura/tree/path/v1"
	labelNode     = "aura/tree/node/v1"
	labelSeal     = "aura/tree/updatepath/v1"
	labelGroupKey = "aura/tree/groupkey/v1"
)

// Key schedule errors.
var (
	// ErrUpdatePath: an UpdatePath that is malformed, does not fit the tree,
	// or whose public keys do not match the path secrets it carries.
	ErrUpdatePath = fmt.Errorf("invalid update path: %w", core.ErrInvalidArgument)
	// ErrNodeKey: a node's HPKE public key in the tree is not a usable X25519
	// key, so nothing can be sealed to it.
	ErrNodeKey = fmt.Errorf("invalid HPKE key of a tree node: %w", core.ErrInvalidArgument)
	// ErrPathDecrypt: the ciphertext sealed to this member does not open: it
	// was altered, or sealed under another context (group, epoch).
	ErrPathDecrypt = fmt.Errorf("path secret does not decrypt: %w", core.ErrInvalidArgument)
	// ErrNotRecipient: the UpdatePath seals nothing to any key this member
	// holds, as for a member the commit removes.
	ErrNotRecipient = fmt.Errorf("update path has no ciphertext for this member: %w", core.ErrPermissionDenied)
	// ErrStaleKeys: the member's private key for the node a ciphertext is
	// sealed to is not the key the tree holds there, so its PathKeys and the
	// tree state it processes against have diverged.
	ErrStaleKeys = fmt.Errorf("member's path keys do not match the tree: %w", core.ErrFailedPrecondition)
)

// KEMView is what the key schedule reads of a tree: its leaf count (a power
// of two) and the HPKE public key of each non-blank node. A blank node has
// no key (ok false). The tree state implements it; the key schedule keeps no
// tree of its own, so the state stays the one place that applies ops.
type KEMView interface {
	Leaves() uint32
	NodeKey(x NodeIndex) (pub []byte, ok bool)
}

// Resolution is RFC 9420 §4.1.1's resolution of node x, left to right: a
// non-blank node resolves to itself, a blank leaf to nothing, and a blank
// parent to the resolution of its left child followed by that of its right.
// The RFC's unmerged leaves are out of scope (see the key schedule above).
func Resolution(v KEMView, x NodeIndex) ([]NodeIndex, error) {
	if err := checkNode(x, v.Leaves()); err != nil {
		return nil, err
	}
	return resolve(v, x, nil, nil), nil
}

// resolve appends the resolution of x to out, treating the nodes in blanked
// as blank whatever the view holds.
func resolve(v KEMView, x NodeIndex, blanked map[NodeIndex]bool, out []NodeIndex) []NodeIndex {
	if !blanked[x] {
		if _, ok := v.NodeKey(x); ok {
			return append(out, x)
		}
	}
	if IsLeaf(x) {
		return out
	}
	return resolve(v, right(x), blanked, resolve(v, left(x), blanked, out))
}

// UpdatePath is what a commit publishes: the committer's new leaf public key
// and, bottom up, one UpdatePathNode per node of its direct path. Build one
// with Commit or ParseUpdatePath; the fields are exported for encoding and
// inspection, and every consumer validates them.
type UpdatePath struct {
	Committer LeafIndex
	LeafKey   [PublicKeySize]byte
	// Nodes[i] belongs to DirectPath[i] of the committer's leaf, so there
	// are log2(n) of them.
	Nodes []UpdatePathNode
}

// UpdatePathNode is one direct-path node's new public key and its path
// secret sealed to each node of the resolution of the copath node beside
// it, left to right.
type UpdatePathNode struct {
	PublicKey   [PublicKeySize]byte
	Ciphertexts []PathCiphertext
}

// PathCiphertext is a path secret sealed to the HPKE key of node Recipient.
type PathCiphertext struct {
	Recipient NodeIndex
	Sealed    [SealedSize]byte
}

// NodePublicKey is a node and its new public key, as an UpdatePath sets it.
type NodePublicKey struct {
	Node NodeIndex
	Key  [PublicKeySize]byte
}

// PublicKeys lists the keys the tree takes from u once its op is applied:
// the committer's leaf, then its direct path bottom up.
func (u *UpdatePath) PublicKeys() ([]NodePublicKey, error) {
	if err := u.validate(); err != nil {
		return nil, err
	}
	n := uint32(1) << len(u.Nodes)
	leaf := NodeIndex(2 * u.Committer)
	dp, err := DirectPath(leaf, n)
	if err != nil {
		return nil, err
	}
	keys := make([]NodePublicKey, 0, len(dp)+1)
	keys = append(keys, NodePublicKey{Node: leaf, Key: u.LeafKey})
	for i, x := range dp {
		keys = append(keys, NodePublicKey{Node: x, Key: u.Nodes[i].PublicKey})
	}
	return keys, nil
}

// PathKeys are the private keys a member holds: its leaf's and those of the
// parent nodes above it, bottom up. See the key schedule above for how long
// they are kept. Not safe for concurrent use with Zero.
type PathKeys struct {
	leaf LeafIndex
	held []heldKey
}

type heldKey struct {
	node NodeIndex
	priv [PublicKeySize]byte // RFC 9180 SerializePrivateKey form
	pub  [PublicKeySize]byte
}

// NewLeafKeys derives the key pair of leaf from a fresh secret the caller
// draws, the way Commit derives a committer's: the member keeps the returned
// PathKeys and the tree takes PublicKey(leaf's node) for the leaf. It holds
// no parent keys; the member receives them with the next commit. The caller
// clears leafSecret.
func NewLeafKeys(leaf LeafIndex, leafSecret [SecretSize]byte) (*PathKeys, error) {
	defer clear(leafSecret[:])
	if leaf >= MaxLeaves {
		return nil, fmt.Errorf("leaf %d, at most %d: %w", leaf, MaxLeaves-1, ErrIndexRange)
	}
	k, err := deriveNodeKey(NodeIndex(2*leaf), &leafSecret)
	if err != nil {
		return nil, err
	}
	return &PathKeys{leaf: leaf, held: []heldKey{k}}, nil
}

// Leaf is the member's leaf.
func (k *PathKeys) Leaf() LeafIndex { return k.leaf }

// PublicKey is the public key of node x if the member holds x's private key.
func (k *PathKeys) PublicKey(x NodeIndex) (pub [PublicKeySize]byte, ok bool) {
	if h := k.find(x); h != nil {
		return h.pub, true
	}
	return pub, false
}

// Zero clears every private key and leaves k holding none.
func (k *PathKeys) Zero() {
	for i := range k.held {
		clear(k.held[i].priv[:])
	}
	k.held = nil
}

func (k *PathKeys) find(x NodeIndex) *heldKey {
	for i := range k.held {
		if k.held[i].node == x {
			return &k.held[i]
		}
	}
	return nil
}

// Commit rekeys committer's leaf and direct path from leafSecret, a fresh
// secret the caller draws (and clears), in the tree v: it returns the
// UpdatePath to publish, the committer's new PathKeys, and the new root
// secret. context names the group or account and the epoch the commit
// creates (see the key schedule above); excluded are leaves that must learn
// nothing, such as one the commit removes: they and every parent above them
// are treated as blank, so even keys of theirs the tree still holds receive
// no ciphertext.
func Commit(v KEMView, committer LeafIndex, leafSecret [SecretSize]byte, context []byte, excluded []LeafIndex) (up *UpdatePath, keys *PathKeys, root [SecretSize]byte, err error) {
	defer clear(leafSecret[:])
	n := v.Leaves()
	leaf, err := LeafNode(committer, n)
	if err != nil {
		return nil, nil, root, fmt.Errorf("committer: %w", err)
	}
	blanked := make(map[NodeIndex]bool)
	for _, l := range excluded {
		x, err := LeafNode(l, n)
		if err != nil {
			return nil, nil, root, fmt.Errorf("excluded leaf: %w", err)
		}
		if l == committer {
			return nil, nil, root, fmt.Errorf("the committer %d cannot be excluded from its own commit: %w", l, core.ErrInvalidArgument)
		}
		for r := NodeIndex(n - 1); ; x = parent(x) {
			blanked[x] = true
			if x == r {
				break
			}
		}
	}
	dp, err := DirectPath(leaf, n)
	if err != nil {
		return nil, nil, root, err
	}
	cp, err := Copath(leaf, n)
	if err != nil {
		return nil, nil, root, err
	}

	// The path secrets come first: a chain of HKDF calls, microseconds.
	secrets, err := pathSecrets(leafSecret, len(dp))
	defer clearSecrets(secrets)
	if err != nil {
		return nil, nil, root, err
	}
	nodes := append([]NodeIndex{leaf}, dp...)
	up = &UpdatePath{Committer: committer, Nodes: make([]UpdatePathNode, len(dp))}
	type seal struct {
		level int
		pub   []byte
		ct    *PathCiphertext
	}
	var seals []seal
	var res []NodeIndex
	for i := range dp {
		res = resolve(v, cp[i], blanked, res[:0])
		if len(res) == 0 {
			continue
		}
		cts := make([]PathCiphertext, len(res))
		for j, r := range res {
			pub, _ := v.NodeKey(r)
			cts[j].Recipient = r
			seals = append(seals, seal{level: i, pub: pub, ct: &cts[j]})
		}
		up.Nodes[i].Ciphertexts = cts
	}
	if len(seals) > MaxPathCiphertexts {
		return nil, nil, root, fmt.Errorf("%d ciphertexts, at most %d: %w", len(seals), MaxPathCiphertexts, core.ErrResourceExhausted)
	}

	// Then the X25519 operations, one per key pair and two per seal: nearly
	// all the cost, and independent of each other. built is zeroed if they
	// fail, after the return statement has set the results to nil.
	built := &PathKeys{leaf: committer, held: make([]heldKey, len(nodes))}
	defer func() {
		if err != nil {
			built.Zero()
		}
	}()
	ctxHash := sha256.Sum256(context)
	err = parallel(len(nodes)+len(seals), func(k int) error {
		if k < len(nodes) {
			var err error
			built.held[k], err = deriveNodeKey(nodes[k], &secrets[k])
			return err
		}
		s := seals[k-len(nodes)]
		if err := sealPathSecret(&s.ct.Sealed, s.pub, &secrets[s.level+1], sealInfo(&ctxHash, committer, dp[s.level], s.ct.Recipient)); err != nil {
			return fmt.Errorf("node %d: %w", s.ct.Recipient, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, root, err
	}
	up.LeafKey = built.held[0].pub
	for i := range up.Nodes {
		up.Nodes[i].PublicKey = built.held[i+1].pub
	}
	root, err = deriveSecret(&secrets[len(dp)], labelPath)
	if err != nil {
		return nil, nil, root, err
	}
	return up, built, root, nil
}

// Process opens the path secret that up seals to the member holding keys,
// in the tree v the commit was made in and under the commit's context, and
// derives the rest of the path up to the root. It checks every public key
// of the path above the member against the secrets it derives, and returns
// the new root secret and the member's new PathKeys (its own keys below the
// lowest common ancestor with the committer, new ones from there up). keys
// is left unchanged; see the key schedule above for when to Zero it.
func Process(v KEMView, keys *PathKeys, up *UpdatePath, context []byte) (root [SecretSize]byte, next *PathKeys, err error) {
	if keys == nil || up == nil {
		return root, nil, fmt.Errorf("no keys or no update path: %w", core.ErrInvalidArgument)
	}
	if err := up.validate(); err != nil {
		return root, nil, err
	}
	n := v.Leaves()
	if err := checkLeafCount(n); err != nil {
		return root, nil, err
	}
	if uint32(1)<<len(up.Nodes) != n {
		return root, nil, fmt.Errorf("path of %d nodes in a tree of %d leaves: %w", len(up.Nodes), n, ErrUpdatePath)
	}
	if _, err := LeafNode(keys.leaf, n); err != nil {
		return root, nil, fmt.Errorf("receiver: %w", err)
	}
	if keys.leaf == up.Committer {
		return root, nil, fmt.Errorf("leaf %d is the committer, which keeps what Commit returned: %w", keys.leaf, core.ErrInvalidArgument)
	}
	dp, err := DirectPath(NodeIndex(2*up.Committer), n)
	if err != nil {
		return root, nil, err
	}
	// The lowest common ancestor of the two leaves is DirectPath[i], at
	// level i+1 = the bit length of the leaf indices' difference; Copath[i]
	// is the subtree holding the receiver.
	i := bits.Len32(uint32(keys.leaf^up.Committer)) - 1

	var ct *PathCiphertext
	var held *heldKey
	for j := range up.Nodes[i].Ciphertexts {
		if h := keys.find(up.Nodes[i].Ciphertexts[j].Recipient); h != nil {
			ct, held = &up.Nodes[i].Ciphertexts[j], h
			break
		}
	}
	if ct == nil {
		return root, nil, fmt.Errorf("leaf %d, from the commit of leaf %d: %w", keys.leaf, up.Committer, ErrNotRecipient)
	}
	if pub, ok := v.NodeKey(ct.Recipient); !ok || !bytes.Equal(pub, held.pub[:]) {
		return root, nil, fmt.Errorf("node %d: %w", ct.Recipient, ErrStaleKeys)
	}

	var opened [SecretSize]byte
	ctxHash := sha256.Sum256(context)
	if err := openPathSecret(&opened, held, ct, sealInfo(&ctxHash, up.Committer, dp[i], ct.Recipient)); err != nil {
		return root, nil, err
	}
	// secrets[k] is the path secret of dp[i+k].
	secrets, err := pathSecrets(opened, len(dp)-i-1)
	clear(opened[:])
	defer clearSecrets(secrets)
	if err != nil {
		return root, nil, err
	}

	// built is zeroed if anything below fails, after the return statement
	// has set the results to nil.
	built := &PathKeys{leaf: keys.leaf, held: make([]heldKey, 0, len(keys.held)+len(dp)-i)}
	defer func() {
		if err != nil {
			built.Zero()
		}
	}()
	for _, h := range keys.held {
		if Level(h.node) <= i {
			built.held = append(built.held, h)
		}
	}
	kept := len(built.held)
	built.held = built.held[:kept+len(dp)-i]
	err = parallel(len(dp)-i, func(k int) error {
		var err error
		built.held[kept+k], err = deriveNodeKey(dp[i+k], &secrets[k])
		return err
	})
	if err != nil {
		return root, nil, err
	}
	for k, h := range built.held[kept:] {
		if h.pub != up.Nodes[i+k].PublicKey {
			return root, nil, fmt.Errorf("public key of node %d does not match its path secret: %w", h.node, ErrUpdatePath)
		}
	}
	root, err = deriveSecret(&secrets[len(secrets)-1], labelPath)
	if err != nil {
		return root, nil, err
	}
	return root, built, nil
}

// GroupKey is the key of one purpose in one epoch, derived from that epoch's
// root secret: HKDF-Expand(root, label ‖ context ‖ purpose ‖ epoch), each
// variable-length part length-prefixed so that no two inputs share an info.
// Keys of different groups, purposes or epochs are independent, and one
// leaked key reveals nothing of the root secret.
func GroupKey(root [SecretSize]byte, context []byte, purpose string, epoch uint64) (key [SecretSize]byte, err error) {
	defer clear(root[:])
	info := make([]byte, 0, len(labelGroupKey)+2*binary.MaxVarintLen64+len(context)+len(purpose)+8)
	info = append(info, labelGroupKey...)
	info = binary.AppendUvarint(info, uint64(len(context)))
	info = append(info, context...)
	info = binary.AppendUvarint(info, uint64(len(purpose)))
	info = append(info, purpose...)
	info = binary.BigEndian.AppendUint64(info, epoch)
	return deriveSecret(&root, string(info))
}

// deriveSecret is RFC 9420's DeriveSecret with this package's labels:
// HKDF-Expand(secret, label, 32). Every secret it is given is already
// uniformly random, so no Extract step is needed.
func deriveSecret(secret *[SecretSize]byte, label string) (out [SecretSize]byte, err error) {
	b, err := hkdf.Expand(sha256.New, secret[:], label, SecretSize)
	if err != nil {
		return out, fmt.Errorf("derive secret: %w", err)
	}
	copy(out[:], b)
	clear(b)
	return out, nil
}

// pathSecrets is first followed by the next up path secrets derived from
// it. The caller clears them (clearSecrets), also after an error.
func pathSecrets(first [SecretSize]byte, up int) ([][SecretSize]byte, error) {
	s := make([][SecretSize]byte, up+1)
	s[0] = first
	clear(first[:])
	for i := 1; i < len(s); i++ {
		var err error
		if s[i], err = deriveSecret(&s[i-1], labelPath); err != nil {
			return s, err
		}
	}
	return s, nil
}

func clearSecrets(s [][SecretSize]byte) {
	for i := range s {
		clear(s[i][:])
	}
}

// parallel runs f(0), …, f(n-1) on up to GOMAXPROCS goroutines and returns
// the error of the lowest k that failed. It carries the X25519 operations
// of Commit and Process (see Cost above); f must touch only its own slots.
func parallel(n int, f func(k int) error) error {
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for k := int(next.Add(1)) - 1; k < n; k = int(next.Add(1)) - 1 {
				errs[k] = f(k)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func hpkeKEM() hpke.KEM { return hpke.DHKEM(ecdh.X25519()) }

// deriveNodeKey is node x's key pair from its path secret: RFC 9180
// DeriveKeyPair(DeriveSecret(ps, "node")).
func deriveNodeKey(x NodeIndex, ps *[SecretSize]byte) (heldKey, error) {
	h := heldKey{node: x}
	ikm, err := deriveSecret(ps, labelNode)
	if err != nil {
		return h, err
	}
	defer clear(ikm[:])
	sk, err := hpkeKEM().DeriveKeyPair(ikm[:])
	if err != nil {
		return h, fmt.Errorf("derive key pair of node %d: %w", x, err)
	}
	b, err := sk.Bytes()
	if err != nil {
		return h, fmt.Errorf("key pair of node %d: %w", x, err)
	}
	copy(h.priv[:], b)
	clear(b)
	copy(h.pub[:], sk.PublicKey().Bytes())
	return h, nil
}

// sealInfo is the HPKE info of the path secret of direct-path node x of
// committer's commit sealed to node r: the label, the context's SHA-256 (a
// fixed-size info whatever the context's length), then the three indices.
func sealInfo(ctxHash *[sha256.Size]byte, committer LeafIndex, x, r NodeIndex) []byte {
	info := make([]byte, 0, len(labelSeal)+sha256.Size+12)
	info = append(info, labelSeal...)
	info = append(info, ctxHash[:]...)
	info = binary.BigEndian.AppendUint32(info, uint32(committer))
	info = binary.BigEndian.AppendUint32(info, uint32(x))
	return binary.BigEndian.AppendUint32(info, uint32(r))
}

func sealPathSecret(dst *[SealedSize]byte, pub []byte, ps *[SecretSize]byte, info []byte) error {
	pk, err := hpkeKEM().NewPublicKey(pub)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNodeKey, err)
	}
	// Seal fails on a low-order point, whose shared secret is all zeros.
	sealed, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), info, ps[:])
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNodeKey, err)
	}
	if len(sealed) != SealedSize {
		return fmt.Errorf("HPKE sealed %d bytes, want %d: %w", len(sealed), SealedSize, core.ErrInternal)
	}
	copy(dst[:], sealed)
	return nil
}

func openPathSecret(ps *[SecretSize]byte, h *heldKey, ct *PathCiphertext, info []byte) error {
	sk, err := hpkeKEM().NewPrivateKey(h.priv[:])
	if err != nil {
		return fmt.Errorf("private key of node %d: %w", h.node, core.ErrInternal)
	}
	pt, err := hpke.Open(sk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), info, ct.Sealed[:])
	if err != nil {
		return fmt.Errorf("sealed to node %d: %w", ct.Recipient, ErrPathDecrypt)
	}
	defer clear(pt)
	if len(pt) != SecretSize {
		return fmt.Errorf("path secret of %d bytes sealed to node %d: %w", len(pt), ct.Recipient, ErrPathDecrypt)
	}
	copy(ps[:], pt)
	return nil
}

// validate checks what an UpdatePath can be checked for without the tree:
// a direct path of at most maxPathDepth nodes (so a tree of 2^len leaves)
// holding the committer, and for each node at most MaxPathCiphertexts in
// all, sealed to nodes inside the copath subtree beside it, left to right,
// none inside another (a resolution is such a set).
func (u *UpdatePath) validate() error {
	d := len(u.Nodes)
	if d > maxPathDepth {
		return fmt.Errorf("direct path of %d nodes, at most %d: %w", d, maxPathDepth, ErrUpdatePath)
	}
	n := uint32(1) << d
	if uint32(u.Committer) >= n {
		return fmt.Errorf("committer %d in a tree of %d leaves: %w", u.Committer, n, ErrUpdatePath)
	}
	total := 0
	for x, i := NodeIndex(2*u.Committer), 0; i < d; x, i = parent(x), i+1 {
		cts := u.Nodes[i].Ciphertexts
		if total += len(cts); len(cts) > 1<<i || total > MaxPathCiphertexts {
			return fmt.Errorf("%d ciphertexts for a copath subtree of %d leaves, %d in all (at most %d): %w", len(cts), 1<<i, total, MaxPathCiphertexts, ErrUpdatePath)
		}
		lo, hi := span(sibling(x))
		for _, ct := range cts {
			rlo, rhi := span(ct.Recipient)
			if rlo < lo || rhi > hi {
				return fmt.Errorf("ciphertext to node %d, outside the copath subtree of node %d: %w", ct.Recipient, sibling(x), ErrUpdatePath)
			}
			lo = rhi + 1
		}
	}
	return nil
}

// span is the range of node indices in the subtree of x; for a node of level
// k it is x ± (2^k - 1). uint64 keeps it exact for any uint32 x.
func span(x NodeIndex) (lo, hi uint64) {
	half := uint64(1)<<Level(x) - 1
	return uint64(x) - half, uint64(x) + half
}

// Encoding of an UpdatePath, big-endian, every field fixed-size so that the
// encoding is canonical:
//
//	version (1) = 1 | committer (4) | leaf key (32) | node count d (1, ≤ 31)
//	d × { public key (32) | ciphertext count c (4) | c × { recipient (4) | sealed (80) } }
//
// A tree of 1,024 leaves without blanks gives 38 + 10 × 120 = 1,238 bytes.
const (
	updatePathVersion    = 1
	updatePathHeaderSize = 1 + 4 + PublicKeySize + 1
	pathCiphertextSize   = 4 + SealedSize
)

// AppendUpdatePath appends u's canonical encoding to dst, or refuses an
// UpdatePath that validation would refuse, so that only parseable bytes
// are ever produced.
func AppendUpdatePath(dst []byte, u *UpdatePath) ([]byte, error) {
	if err := u.validate(); err != nil {
		return dst, err
	}
	dst = append(dst, updatePathVersion)
	dst = binary.BigEndian.AppendUint32(dst, uint32(u.Committer))
	dst = append(dst, u.LeafKey[:]...)
	dst = append(dst, byte(len(u.Nodes)))
	for i := range u.Nodes {
		nd := &u.Nodes[i]
		dst = append(dst, nd.PublicKey[:]...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(nd.Ciphertexts)))
		for j := range nd.Ciphertexts {
			dst = binary.BigEndian.AppendUint32(dst, uint32(nd.Ciphertexts[j].Recipient))
			dst = append(dst, nd.Ciphertexts[j].Sealed[:]...)
		}
	}
	return dst, nil
}

// ParseUpdatePath accepts exactly the canonical encoding of a valid
// UpdatePath. It checks each count against the bytes left before it
// allocates, so a forged count costs nothing.
func ParseUpdatePath(b []byte) (*UpdatePath, error) {
	if len(b) < updatePathHeaderSize {
		return nil, fmt.Errorf("%d bytes, at least %d: %w", len(b), updatePathHeaderSize, ErrUpdatePath)
	}
	if b[0] != updatePathVersion {
		return nil, fmt.Errorf("version %d: %w", b[0], ErrUpdatePath)
	}
	u := &UpdatePath{Committer: LeafIndex(binary.BigEndian.Uint32(b[1:]))}
	copy(u.LeafKey[:], b[5:])
	d := int(b[5+PublicKeySize])
	if d > maxPathDepth {
		return nil, fmt.Errorf("direct path of %d nodes, at most %d: %w", d, maxPathDepth, ErrUpdatePath)
	}
	b = b[updatePathHeaderSize:]
	if len(b) < d*(PublicKeySize+4) {
		return nil, fmt.Errorf("%d nodes in %d bytes: %w", d, len(b), ErrUpdatePath)
	}
	u.Nodes = make([]UpdatePathNode, d)
	for i := range u.Nodes {
		if len(b) < PublicKeySize+4 {
			return nil, fmt.Errorf("node %d truncated: %w", i, ErrUpdatePath)
		}
		nd := &u.Nodes[i]
		copy(nd.PublicKey[:], b)
		c := binary.BigEndian.Uint32(b[PublicKeySize:])
		b = b[PublicKeySize+4:]
		if c > MaxPathCiphertexts || uint64(c)*pathCiphertextSize > uint64(len(b)) {
			return nil, fmt.Errorf("node %d: %d ciphertexts in %d bytes: %w", i, c, len(b), ErrUpdatePath)
		}
		if c > 0 {
			nd.Ciphertexts = make([]PathCiphertext, c)
		}
		for j := range nd.Ciphertexts {
			nd.Ciphertexts[j].Recipient = NodeIndex(binary.BigEndian.Uint32(b))
			copy(nd.Ciphertexts[j].Sealed[:], b[4:pathCiphertextSize])
			b = b[pathCiphertextSize:]
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d bytes after the update path: %w", len(b), ErrUpdatePath)
	}
	if err := u.validate(); err != nil {
		return nil, err
	}
	return u, nil
}
