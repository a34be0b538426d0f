package tree

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"pgregory.net/rapid"
)

// ktTree is a KEMView to which the tests apply update paths and removals,
// as the tree state does.
type ktTree struct {
	n    uint32
	keys map[NodeIndex][]byte
}

func (t *ktTree) Leaves() uint32 { return t.n }

func (t *ktTree) NodeKey(x NodeIndex) ([]byte, bool) {
	k, ok := t.keys[x]
	return k, ok
}

func (t *ktTree) apply(tt tb, up *UpdatePath) {
	tt.Helper()
	pks, err := up.PublicKeys()
	if err != nil {
		tt.Fatalf("PublicKeys: %v", err)
	}
	for _, pk := range pks {
		t.keys[pk.Node] = bytes.Clone(pk.Key[:])
	}
}

// blankPath blanks leaf l and every parent above it, as a removal does.
func (t *ktTree) blankPath(l LeafIndex) {
	x := NodeIndex(2 * l)
	for delete(t.keys, x); x != NodeIndex(t.n-1); delete(t.keys, x) {
		x = parent(x)
	}
}

func (t *ktTree) clone() *ktTree {
	return &ktTree{n: t.n, keys: maps.Clone(t.keys)}
}

// ktGroup is a tree with its members' private keys and the current epoch's
// root secret.
type ktGroup struct {
	tree  *ktTree
	keys  map[LeafIndex]*PathKeys
	epoch uint64
	root  [SecretSize]byte
	rng   *rand.ChaCha8
}

func ktContext(epoch uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("aura test group "), epoch)
}

// newKTGroup builds a tree of n leaves whose members hold leaf keys, and
// whose parent nodes x with nonBlank(x) (and a member below) hold a key that
// every member below knows: the state commits and adds leave behind.
func newKTGroup(t tb, n uint32, members []LeafIndex, nonBlank func(NodeIndex) bool) *ktGroup {
	t.Helper()
	g := &ktGroup{
		tree: &ktTree{n: n, keys: map[NodeIndex][]byte{}},
		keys: map[LeafIndex]*PathKeys{},
		rng:  rand.NewChaCha8([32]byte{'k', 't'}),
	}
	for _, l := range members {
		k, err := NewLeafKeys(l, g.secret())
		if err != nil {
			t.Fatalf("NewLeafKeys(%d): %v", l, err)
		}
		g.keys[l] = k
		pub, ok := k.PublicKey(NodeIndex(2 * l))
		if !ok {
			t.Fatalf("leaf %d holds no key of its own node", l)
		}
		g.tree.keys[NodeIndex(2*l)] = bytes.Clone(pub[:])
	}
	for lvl := 1; 1<<lvl <= n; lvl++ {
		for x := NodeIndex(1)<<lvl - 1; uint32(x) < 2*n-1; x += NodeIndex(1) << (lvl + 1) {
			lo, hi := span(x)
			var below []LeafIndex
			for _, l := range members {
				if uint64(2*l) >= lo && uint64(2*l) <= hi {
					below = append(below, l)
				}
			}
			if len(below) == 0 || !nonBlank(x) {
				continue
			}
			s := g.secret()
			h, err := deriveNodeKey(x, &s)
			if err != nil {
				t.Fatalf("deriveNodeKey(%d): %v", x, err)
			}
			g.tree.keys[x] = bytes.Clone(h.pub[:])
			for _, l := range below {
				g.keys[l].held = append(g.keys[l].held, h)
			}
		}
	}
	g.check(t)
	return g
}

func ktFull(NodeIndex) bool  { return true }
func ktBlank(NodeIndex) bool { return false }

func ktLeaves(n uint32) []LeafIndex {
	ls := make([]LeafIndex, n)
	for i := range ls {
		ls[i] = LeafIndex(i)
	}
	return ls
}

func (g *ktGroup) secret() (s [SecretSize]byte) {
	_, _ = g.rng.Read(s[:])
	return s
}

func (g *ktGroup) members() []LeafIndex {
	return slices.Sorted(maps.Keys(g.keys))
}

// commit runs a commit by c that removes the leaves in removed: every
// other member processes it and must reach the committer's root secret;
// then the tree takes the new keys, blanks the removed leaves' paths, and
// the members adopt their new keys. It returns the update path.
func (g *ktGroup) commit(t tb, c LeafIndex, removed ...LeafIndex) *UpdatePath {
	t.Helper()
	ctx := ktContext(g.epoch + 1)
	up, ck, root, err := Commit(g.tree, c, g.secret(), ctx, removed)
	if err != nil {
		t.Fatalf("epoch %d: Commit by %d: %v", g.epoch+1, c, err)
	}
	next := map[LeafIndex]*PathKeys{c: ck}
	for _, l := range g.members() {
		if l == c || slices.Contains(removed, l) {
			continue
		}
		r, nk, err := Process(g.tree, g.keys[l], up, ctx)
		if err != nil {
			t.Fatalf("epoch %d: leaf %d processing the commit of %d: %v", g.epoch+1, l, c, err)
		}
		if r != root {
			t.Fatalf("epoch %d: leaf %d derived another root secret than committer %d", g.epoch+1, l, c)
		}
		next[l] = nk
	}
	for _, r := range removed {
		g.tree.blankPath(r)
		delete(g.keys, r) // not zeroed: the removed member keeps what it had
	}
	g.tree.apply(t, up)
	for l, k := range g.keys {
		k.Zero()
		g.keys[l] = next[l]
	}
	g.epoch++
	g.root = root
	g.check(t)
	return up
}

// check asserts the invariant the key schedule relies on: each member holds
// the private key of every non-blank node on its path, matching the tree.
func (g *ktGroup) check(t tb) {
	t.Helper()
	for l, k := range g.keys {
		if k.Leaf() != l {
			t.Fatalf("keys of leaf %d say leaf %d", l, k.Leaf())
		}
		for x := NodeIndex(2 * l); ; x = parent(x) {
			if pub, ok := g.tree.keys[x]; ok {
				if h, ok := k.PublicKey(x); !ok || !bytes.Equal(h[:], pub) {
					t.Fatalf("epoch %d: leaf %d does not hold the tree's key of node %d", g.epoch, l, x)
				}
			}
			if x == NodeIndex(g.tree.n-1) {
				break
			}
		}
	}
}

func ktCloneKeys(k *PathKeys) *PathKeys {
	return &PathKeys{leaf: k.leaf, held: slices.Clone(k.held)}
}

func ktCloneUpdate(u *UpdatePath) *UpdatePath {
	c := *u
	c.Nodes = slices.Clone(u.Nodes)
	for i := range c.Nodes {
		c.Nodes[i].Ciphertexts = slices.Clone(u.Nodes[i].Ciphertexts)
	}
	return &c
}

func ktCiphertexts(u *UpdatePath) int {
	total := 0
	for _, nd := range u.Nodes {
		total += len(nd.Ciphertexts)
	}
	return total
}

// ktSeal and ktOpen stand for an application message under a group key.
func ktSeal(t *testing.T, key [SecretSize]byte, msg []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key[:])
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	return aead.Seal(nonce, nonce, msg, nil)
}

func ktOpen(key [SecretSize]byte, sealed []byte) bool {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return false
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return false
	}
	ns := aead.NonceSize()
	_, err = aead.Open(nil, sealed[:ns], sealed[ns:], nil)
	return err == nil
}

func TestResolution(t *testing.T) {
	// 8 leaves; non-blank: parent 1, leaf 2 (node 4), leaf 4 (node 8),
	// parent 13. Root 7, parents 3, 5, 9, 11 and the other leaves blank.
	tr := &ktTree{n: 8, keys: map[NodeIndex][]byte{}}
	for _, x := range []NodeIndex{1, 4, 8, 13} {
		tr.keys[x] = make([]byte, PublicKeySize)
	}
	for _, tc := range []struct {
		x    NodeIndex
		want []NodeIndex
	}{
		{7, []NodeIndex{1, 4, 8, 13}},
		{3, []NodeIndex{1, 4}},
		{11, []NodeIndex{8, 13}},
		{5, []NodeIndex{4}},
		{1, []NodeIndex{1}},
		{6, nil},
		{9, []NodeIndex{8}},
		{13, []NodeIndex{13}},
	} {
		got, err := Resolution(tr, tc.x)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Resolution(%d) = %v, %v; want %v", tc.x, got, err, tc.want)
		}
	}
	if _, err := Resolution(tr, 15); !errors.Is(err, ErrIndexRange) {
		t.Errorf("Resolution(15) in 8 leaves: %v", err)
	}
	if _, err := Resolution(&ktTree{n: 6}, 0); !errors.Is(err, ErrLeafCount) {
		t.Errorf("Resolution in 6 leaves: %v", err)
	}
}

// TestCommitAllMembersAgree: in each tree, every member commits in turn,
// and every other member derives the committer's root secret (g.commit),
// epoch after epoch, with the keys the previous commits left it.
func TestCommitAllMembersAgree(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        uint32
		members  []LeafIndex
		nonBlank func(NodeIndex) bool
	}{
		{"2 leaves", 2, ktLeaves(2), ktFull},
		{"3 of 4 leaves, blank parents", 4, []LeafIndex{0, 1, 2}, ktBlank},
		{"3 of 4 leaves, blank root", 4, []LeafIndex{0, 2, 3}, func(x NodeIndex) bool { return x != 3 }},
		{"8 leaves", 8, ktLeaves(8), ktFull},
		{"64 leaves", 64, ktLeaves(64), ktFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newKTGroup(t, tc.n, tc.members, tc.nonBlank)
			for i, c := range tc.members {
				if testing.Short() && len(tc.members) > 8 && i%8 != 0 {
					continue
				}
				g.commit(t, c)
			}
			// After everyone's commit no parent above a member is blank.
			for _, c := range tc.members {
				if testing.Short() {
					break
				}
				for x := parent(NodeIndex(2 * c)); ; x = parent(x) {
					if _, ok := g.tree.keys[x]; !ok {
						t.Fatalf("node %d above leaf %d still blank", x, c)
					}
					if x == NodeIndex(tc.n-1) {
						break
					}
				}
			}
		})
	}
}

// TestCommitRandomTrees: random trees of up to 16 leaves with random blank
// leaves and parents, a random committer and possibly a removed member:
// every remaining member agrees, the removed one is no recipient, and the
// ciphertexts of each level are as many as the copath resolution minus the
// removed member's nodes.
func TestCommitRandomTrees(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := uint32(1) << rapid.IntRange(1, 4).Draw(t, "log2 n")
		var members []LeafIndex
		for l := range LeafIndex(n) {
			if rapid.Bool().Draw(t, "member") {
				members = append(members, l)
			}
		}
		if len(members) < 2 {
			members = []LeafIndex{0, LeafIndex(n - 1)}
		}
		blanks := map[NodeIndex]bool{}
		g := newKTGroup(t, n, members, func(x NodeIndex) bool {
			blanks[x] = rapid.Bool().Draw(t, "blank")
			return !blanks[x]
		})
		c := rapid.SampledFrom(members).Draw(t, "committer")
		var removed []LeafIndex
		if len(members) > 2 && rapid.Bool().Draw(t, "remove") {
			r := rapid.SampledFrom(members).Filter(func(l LeafIndex) bool { return l != c }).Draw(t, "removed")
			removed = append(removed, r)
		}
		before := g.tree.clone()
		var removedKeys *PathKeys
		if len(removed) == 1 {
			removedKeys = ktCloneKeys(g.keys[removed[0]])
		}
		up := g.commit(t, c, removed...)
		if removedKeys != nil {
			if _, _, err := Process(before, removedKeys, up, ktContext(g.epoch)); !errors.Is(err, ErrNotRecipient) {
				t.Fatalf("removed leaf %d processing its removal: %v", removed[0], err)
			}
		}
		cp, err := Copath(NodeIndex(2*c), n)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range cp {
			var want int
			for _, r := range resolveByDefinition(before, x) {
				if len(removed) == 0 || !ktCovers(r, NodeIndex(2*removed[0])) {
					want++
				} else {
					want += len(ktResolutionWithout(before, r, NodeIndex(2*removed[0])))
				}
			}
			if got := len(up.Nodes[i].Ciphertexts); got != want {
				t.Fatalf("level %d: %d ciphertexts, want %d", i, got, want)
			}
		}
	})
}

// resolveByDefinition is RFC 9420's resolution written from the
// definition, as an oracle for Resolution.
func resolveByDefinition(v *ktTree, x NodeIndex) []NodeIndex {
	if _, ok := v.keys[x]; ok {
		return []NodeIndex{x}
	}
	if IsLeaf(x) {
		return nil
	}
	return append(resolveByDefinition(v, left(x)), resolveByDefinition(v, right(x))...)
}

// ktResolutionWithout is the resolution of x once the path from leaf node l
// up through x is blank.
func ktResolutionWithout(v *ktTree, x, l NodeIndex) []NodeIndex {
	if x == l {
		return nil
	}
	if !ktCovers(x, l) {
		return resolveByDefinition(v, x)
	}
	return append(ktResolutionWithout(v, left(x), l), ktResolutionWithout(v, right(x), l)...)
}

func ktCovers(x, y NodeIndex) bool {
	lo, hi := span(x)
	return uint64(y) >= lo && uint64(y) <= hi
}

// TestCommitCiphertextCount: in a tree without blanks every copath
// resolution is one node, so a commit carries exactly log2(n) ciphertexts.
func TestCommitCiphertextCount(t *testing.T) {
	for _, n := range []uint32{1, 2, 8, 64, 1024} {
		g := newKTGroup(t, n, ktLeaves(n), ktFull)
		log2n := Level(NodeIndex(n - 1))
		for _, c := range []LeafIndex{0, LeafIndex(n / 2), LeafIndex(n - 1)} {
			ctx := ktContext(1)
			up, _, root, err := Commit(g.tree, c, g.secret(), ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(up.Nodes) != log2n || ktCiphertexts(up) != log2n {
				t.Fatalf("n=%d committer %d: %d nodes, %d ciphertexts; want %d each", n, c, len(up.Nodes), ktCiphertexts(up), log2n)
			}
			enc, err := AppendUpdatePath(nil, up)
			if err != nil {
				t.Fatal(err)
			}
			if want := updatePathHeaderSize + log2n*(PublicKeySize+4+pathCiphertextSize); len(enc) != want {
				t.Fatalf("n=%d: %d bytes, want %d", n, len(enc), want)
			}
			if n == 1024 && len(enc) != 1238 {
				t.Fatalf("1,024 leaves: %d bytes, want 1,238", len(enc))
			}
			// The leaves nearest and farthest from the committer agree.
			for _, l := range []LeafIndex{c ^ 1, c ^ LeafIndex(n/2)} {
				if l == c || uint32(l) >= n {
					continue
				}
				r, _, err := Process(g.tree, g.keys[l], up, ctx)
				if err != nil || r != root {
					t.Fatalf("n=%d: leaf %d on the commit of %d: same root %v, %v", n, l, c, r == root, err)
				}
			}
		}
	}
}

// TestKeyForwardSecrecyRemoved: a removed member that kept every key and
// root secret it ever had learns nothing from the commit that removes it
// or from later ones, and cannot open a message under a later group key.
func TestKeyForwardSecrecyRemoved(t *testing.T) {
	const removed = LeafIndex(5)
	g := newKTGroup(t, 8, ktLeaves(8), ktFull)
	var hoardKeys []heldKey
	var hoardRoots [][SecretSize]byte
	hoard := func() {
		hoardKeys = append(hoardKeys, g.keys[removed].held...)
		hoardRoots = append(hoardRoots, g.root)
	}
	hoard()
	for _, c := range []LeafIndex{2, 5, 7} {
		g.commit(t, c)
		hoard()
	}
	keysAtRemoval := ktCloneKeys(g.keys[removed])
	before := g.tree.clone()

	// Control: the same commit without the exclusion would reach it, so
	// what follows tests the exclusion and not an unrelated failure.
	ctrl, _, ctrlRoot, err := Commit(before, 0, g.secret(), ktContext(g.epoch+1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, _, err := Process(before, keysAtRemoval, ctrl, ktContext(g.epoch+1)); err != nil || r != ctrlRoot {
		t.Fatalf("control: a member not excluded cannot process: %v", err)
	}

	// The tree still holds the removed member's keys when leaf 0 commits
	// the removal: the exclusion alone must keep them out.
	up := g.commit(t, 0, removed)
	for _, nd := range up.Nodes {
		for _, ct := range nd.Ciphertexts {
			if ktCovers(ct.Recipient, NodeIndex(2*removed)) {
				t.Fatalf("ciphertext to node %d, above the removed leaf", ct.Recipient)
			}
		}
	}
	if _, _, err := Process(before, keysAtRemoval, up, ktContext(g.epoch)); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("removed member processing its removal: %v", err)
	}
	ktTryEveryKey(t, hoardKeys, up, ktContext(g.epoch))

	type epochRoot struct {
		epoch uint64
		root  [SecretSize]byte
	}
	sealed := []epochRoot{{g.epoch, g.root}}

	before = g.tree.clone()
	after := g.commit(t, 6) // a later epoch
	ktTryEveryKey(t, hoardKeys, after, ktContext(g.epoch))
	if _, _, err := Process(before, keysAtRemoval, after, ktContext(g.epoch)); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("removed member processing a later commit: %v", err)
	}
	sealed = append(sealed, epochRoot{g.epoch, g.root})

	for _, s := range sealed {
		key, err := GroupKey(s.root, ktContext(s.epoch), "messages", s.epoch)
		if err != nil {
			t.Fatal(err)
		}
		msg := ktSeal(t, key, []byte("after the removal"))
		if !ktOpen(key, msg) {
			t.Fatal("a member cannot open with the group key")
		}
		for _, root := range hoardRoots {
			for e := uint64(0); e <= g.epoch; e++ {
				k, err := GroupKey(root, ktContext(e), "messages", e)
				if err != nil {
					t.Fatal(err)
				}
				if ktOpen(k, msg) {
					t.Fatalf("a root secret the removed member held opens the message of epoch %d", s.epoch)
				}
			}
		}
	}
}

// ktTryEveryKey opens every ciphertext of up with every key in keys: none
// may open.
func ktTryEveryKey(t *testing.T, keys []heldKey, up *UpdatePath, ctx []byte) {
	t.Helper()
	dp, err := DirectPath(NodeIndex(2*up.Committer), uint32(1)<<len(up.Nodes))
	if err != nil {
		t.Fatal(err)
	}
	ctxHash := sha256.Sum256(ctx)
	for i, nd := range up.Nodes {
		for j := range nd.Ciphertexts {
			ct := &nd.Ciphertexts[j]
			for k := range keys {
				var ps [SecretSize]byte
				if err := openPathSecret(&ps, &keys[k], ct, sealInfo(&ctxHash, up.Committer, dp[i], ct.Recipient)); err == nil {
					t.Fatalf("key of node %d opens the ciphertext to node %d", keys[k].node, ct.Recipient)
				}
			}
		}
	}
}

// TestKeyPostCompromiseSecurity: an attacker who copied a member's keys
// follows the group until that member commits a fresh update path, and
// from then on neither opens a ciphertext nor a message.
func TestKeyPostCompromiseSecurity(t *testing.T) {
	const victim = LeafIndex(3)
	g := newKTGroup(t, 8, ktLeaves(8), ktFull)
	g.commit(t, 0)
	stolen := ktCloneKeys(g.keys[victim])
	hoard := slices.Clone(stolen.held)
	hoardRoots := [][SecretSize]byte{g.root}

	// Control: with current keys the attacker follows a commit.
	before := g.tree.clone()
	up := g.commit(t, 6)
	r, next, err := Process(before, stolen, up, ktContext(g.epoch))
	if err != nil || r != g.root {
		t.Fatalf("control: the attacker cannot follow with stolen keys: %v", err)
	}
	stolen = next
	hoard = append(hoard, stolen.held...)
	hoardRoots = append(hoardRoots, r)

	// The victim heals.
	heal := g.commit(t, victim)
	ktTryEveryKey(t, hoard, heal, ktContext(g.epoch))

	// Commits after the heal seal to the victim's new keys: the stolen ones
	// are stale wherever the new ciphertexts go.
	for _, c := range []LeafIndex{2, 1, 6} {
		before := g.tree.clone()
		up := g.commit(t, c)
		if _, _, err := Process(before, stolen, up, ktContext(g.epoch)); !errors.Is(err, ErrStaleKeys) {
			t.Fatalf("commit of %d after the heal: attacker's Process: %v", c, err)
		}
		ktTryEveryKey(t, hoard, up, ktContext(g.epoch))
	}

	key, err := GroupKey(g.root, ktContext(g.epoch), "messages", g.epoch)
	if err != nil {
		t.Fatal(err)
	}
	msg := ktSeal(t, key, []byte("after the heal"))
	if !ktOpen(key, msg) {
		t.Fatal("a member cannot open with the group key")
	}
	for _, root := range hoardRoots {
		for e := uint64(0); e <= g.epoch; e++ {
			k, err := GroupKey(root, ktContext(e), "messages", e)
			if err != nil {
				t.Fatal(err)
			}
			if ktOpen(k, msg) {
				t.Fatalf("a stolen root secret opens the message of epoch %d", g.epoch)
			}
		}
	}
}

// TestProcessRefusesTampering: altered update paths, another context and a
// diverged tree are refused with the matching error, and no keys.
func TestProcessRefusesTampering(t *testing.T) {
	g := newKTGroup(t, 8, ktLeaves(8), ktFull)
	ctx := ktContext(1)
	up, _, root, err := Commit(g.tree, 0, g.secret(), ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	far, near := g.keys[5], g.keys[1] // far opens Nodes[2]; near Nodes[0]
	for _, k := range []*PathKeys{far, near} {
		if r, _, err := Process(g.tree, k, up, ctx); err != nil || r != root {
			t.Fatalf("leaf %d on the untampered path: %v", k.Leaf(), err)
		}
	}
	stale := g.tree.clone()
	stale.keys[11] = bytes.Clone(g.tree.keys[13])

	for _, tc := range []struct {
		name string
		keys *PathKeys
		edit func(*UpdatePath)
		ctx  []byte
		view KEMView
		want error
	}{
		{"encapsulated key", far, func(u *UpdatePath) { u.Nodes[2].Ciphertexts[0].Sealed[0] ^= 1 }, ctx, g.tree, ErrPathDecrypt},
		{"sealed secret", far, func(u *UpdatePath) { u.Nodes[2].Ciphertexts[0].Sealed[40] ^= 1 }, ctx, g.tree, ErrPathDecrypt},
		{"tag", far, func(u *UpdatePath) { u.Nodes[2].Ciphertexts[0].Sealed[SealedSize-1] ^= 1 }, ctx, g.tree, ErrPathDecrypt},
		{"next epoch's context", far, nil, ktContext(2), g.tree, ErrPathDecrypt},
		{"another group's context", near, nil, []byte("another group"), g.tree, ErrPathDecrypt},
		{"committer", far, func(u *UpdatePath) {
			// Leaves 0 and 1 share level 2's copath; the levels below
			// would not fit leaf 1, so they go.
			u.Committer, u.Nodes[0].Ciphertexts, u.Nodes[1].Ciphertexts = 1, nil, nil
		}, ctx, g.tree, ErrPathDecrypt},
		{"recipient moved to a node of the receiver", far, func(u *UpdatePath) { u.Nodes[2].Ciphertexts[0].Recipient = 9 }, ctx, g.tree, ErrPathDecrypt},
		{"recipient moved to another node", far, func(u *UpdatePath) { u.Nodes[2].Ciphertexts[0].Recipient = 13 }, ctx, g.tree, ErrNotRecipient},
		{"recipient outside the copath", far, func(u *UpdatePath) { u.Nodes[2].Ciphertexts[0].Recipient = 3 }, ctx, g.tree, ErrUpdatePath},
		{"ciphertexts dropped", far, func(u *UpdatePath) { u.Nodes[2].Ciphertexts = nil }, ctx, g.tree, ErrNotRecipient},
		{"levels swapped", far, func(u *UpdatePath) { u.Nodes[1], u.Nodes[2] = u.Nodes[2], u.Nodes[1] }, ctx, g.tree, ErrUpdatePath},
		{"root public key", far, func(u *UpdatePath) { u.Nodes[2].PublicKey[0] ^= 1 }, ctx, g.tree, ErrUpdatePath},
		{"middle public key", near, func(u *UpdatePath) { u.Nodes[1].PublicKey[0] ^= 1 }, ctx, g.tree, ErrUpdatePath},
		{"path of a smaller tree", far, func(u *UpdatePath) { u.Nodes = u.Nodes[:2] }, ctx, g.tree, ErrUpdatePath},
		{"committer outside the tree", far, func(u *UpdatePath) { u.Committer = 8 }, ctx, g.tree, ErrUpdatePath},
		{"own commit", g.keys[0], nil, ctx, g.tree, core.ErrInvalidArgument},
		{"diverged tree", far, nil, ctx, stale, ErrStaleKeys},
	} {
		u := ktCloneUpdate(up)
		if tc.edit != nil {
			tc.edit(u)
		}
		r, next, err := Process(tc.view, tc.keys, u, tc.ctx)
		if !errors.Is(err, tc.want) || next != nil || r != ([SecretSize]byte{}) {
			t.Errorf("%s: %v (keys %v), want %v", tc.name, err, next != nil, tc.want)
		}
	}
}

// TestProcessKeepsInput: Process returns new keys and leaves the old ones
// as they were, since the op it processes may still lose in reduction.
func TestProcessKeepsInput(t *testing.T) {
	g := newKTGroup(t, 8, ktLeaves(8), ktFull)
	ctx := ktContext(1)
	up, _, _, err := Commit(g.tree, 6, g.secret(), ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := g.keys[0]
	was := ktCloneKeys(k)
	_, next, err := Process(g.tree, k, up, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k.held, was.held) {
		t.Fatal("Process changed the keys it was given")
	}
	// Leaf 0 and nodes 1 and 3 are below the root, the common ancestor
	// with leaf 6, and kept; the root's key is new.
	for _, x := range []NodeIndex{0, 1, 3, 7} {
		old, _ := k.PublicKey(x)
		got, ok := next.PublicKey(x)
		if !ok || (old == got) != (x != 7) {
			t.Fatalf("node %d: held %v, kept the old key %v", x, ok, old == got)
		}
	}
	next.Zero()
	if !slices.Equal(k.held, was.held) {
		t.Fatal("zeroing the new keys cleared the old ones")
	}
}

func TestCommitRefusals(t *testing.T) {
	g := newKTGroup(t, 4, ktLeaves(4), ktFull)
	short, lowOrder := g.tree.clone(), g.tree.clone()
	short.keys[2] = short.keys[2][:PublicKeySize-1]
	lowOrder.keys[2] = make([]byte, PublicKeySize)
	// 2^17 leaves under blank parents: n-1 ciphertexts, past the bound.
	blank := &ktTree{n: 1 << 17, keys: map[NodeIndex][]byte{}}
	for l := range NodeIndex(1 << 17) {
		blank.keys[2*l] = g.tree.keys[0]
	}
	for _, tc := range []struct {
		name     string
		view     KEMView
		c        LeafIndex
		excluded []LeafIndex
		want     error
	}{
		{"committer outside the tree", g.tree, 4, nil, ErrIndexRange},
		{"excluded leaf outside the tree", g.tree, 0, []LeafIndex{9}, ErrIndexRange},
		{"committer excluded", g.tree, 1, []LeafIndex{2, 1}, core.ErrInvalidArgument},
		{"leaf count", &ktTree{n: 3}, 0, nil, ErrLeafCount},
		{"short node key", short, 0, nil, ErrNodeKey},
		{"low-order node key", lowOrder, 0, nil, ErrNodeKey},
		{"too many ciphertexts", blank, 0, nil, core.ErrResourceExhausted},
	} {
		up, keys, root, err := Commit(tc.view, tc.c, g.secret(), ktContext(1), tc.excluded)
		if !errors.Is(err, tc.want) || up != nil || keys != nil || root != ([SecretSize]byte{}) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := NewLeafKeys(MaxLeaves, [SecretSize]byte{}); !errors.Is(err, ErrIndexRange) {
		t.Errorf("NewLeafKeys(MaxLeaves): %v", err)
	}
}

func TestKeyGroupKey(t *testing.T) {
	root := [SecretSize]byte{1, 2, 3}
	gk := func(root [SecretSize]byte, ctx, purpose string, epoch uint64) [SecretSize]byte {
		t.Helper()
		k, err := GroupKey(root, []byte(ctx), purpose, epoch)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := gk(root, "group", "messages", 7)
	if gk(root, "group", "messages", 7) != base {
		t.Fatal("GroupKey is not deterministic")
	}
	seen := map[[SecretSize]byte]string{base: "base"}
	for name, k := range map[string][SecretSize]byte{
		"root":          gk([SecretSize]byte{1, 2, 4}, "group", "messages", 7),
		"context":       gk(root, "group2", "messages", 7),
		"purpose":       gk(root, "group", "files", 7),
		"epoch":         gk(root, "group", "messages", 8),
		"shifted split": gk(root, "groupm", "essages", 7),
		"empty":         gk(root, "", "", 0),
	} {
		if other, dup := seen[k]; dup {
			t.Fatalf("%s gives the key of %s", name, other)
		}
		seen[k] = name
	}
}

// ktManualPath is an UpdatePath of a tree of 2^d leaves by committer with
// the given recipients per level and zero keys and ciphertexts.
func ktManualPath(committer LeafIndex, d int, recipients map[int][]NodeIndex) *UpdatePath {
	u := &UpdatePath{Committer: committer, Nodes: make([]UpdatePathNode, d)}
	for i, rs := range recipients {
		for _, r := range rs {
			u.Nodes[i].Ciphertexts = append(u.Nodes[i].Ciphertexts, PathCiphertext{Recipient: r})
		}
	}
	return u
}

func TestUpdatePathEncoding(t *testing.T) {
	var encs [][]byte
	for _, tc := range []struct {
		n        uint32
		members  []LeafIndex
		nonBlank func(NodeIndex) bool
		c        LeafIndex
		cts      int
	}{
		{1, []LeafIndex{0}, ktFull, 0, 0},
		{4, []LeafIndex{0, 1, 2}, ktBlank, 0, 2},
		{8, []LeafIndex{0, 1, 4, 5, 6}, ktBlank, 5, 4},
		{8, ktLeaves(8), ktFull, 5, 3},
	} {
		g := newKTGroup(t, tc.n, tc.members, tc.nonBlank)
		up := g.commit(t, tc.c)
		if ktCiphertexts(up) != tc.cts {
			t.Fatalf("n=%d: %d ciphertexts, want %d", tc.n, ktCiphertexts(up), tc.cts)
		}
		enc, err := AppendUpdatePath(nil, up)
		if err != nil {
			t.Fatal(err)
		}
		if want := updatePathHeaderSize + len(up.Nodes)*(PublicKeySize+4) + tc.cts*pathCiphertextSize; len(enc) != want {
			t.Fatalf("n=%d: %d bytes, want %d", tc.n, len(enc), want)
		}
		back, err := ParseUpdatePath(enc)
		if err != nil {
			t.Fatalf("n=%d: %v", tc.n, err)
		}
		if again, err := AppendUpdatePath(nil, back); err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("n=%d: re-encoding differs: %v", tc.n, err)
		}
		if !ktEqualPaths(back, up) {
			t.Fatalf("n=%d: parsed path differs", tc.n)
		}
		encs = append(encs, enc)
	}

	full := encs[3] // 8 leaves, committer 5, one ciphertext per level
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(full)) }
	countAt := updatePathHeaderSize + PublicKeySize // count of level 0
	for name, b := range map[string][]byte{
		"empty":              nil,
		"short header":       full[:updatePathHeaderSize-1],
		"version 0":          edit(func(b []byte) []byte { b[0] = 0; return b }),
		"version 2":          edit(func(b []byte) []byte { b[0] = 2; return b }),
		"depth 32":           edit(func(b []byte) []byte { b[updatePathHeaderSize-1] = 32; return b }),
		"depth 2":            edit(func(b []byte) []byte { b[updatePathHeaderSize-1] = 2; return b }),
		"depth 4":            edit(func(b []byte) []byte { b[updatePathHeaderSize-1] = 4; return b }),
		"committer 8":        edit(func(b []byte) []byte { b[4] = 8; return b }),
		"truncated":          full[:len(full)-1],
		"trailing byte":      append(bytes.Clone(full), 0),
		"count 2^32-1":       edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[countAt:], 1<<32-1); return b }),
		"count 0 then bytes": edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[countAt:], 0); return b }),
		"recipient outside":  edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[countAt+4:], 3); return b }),
		"level 0 count 2": edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[countAt:], 2)
			return slices.Insert(b, countAt+4, b[countAt+4:countAt+4+pathCiphertextSize]...)
		}),
	} {
		if _, err := ParseUpdatePath(b); !errors.Is(err, ErrUpdatePath) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// 8 leaves, committer 0: level 2's copath subtree is node 11 (leaves
	// 4..7, nodes 8..14).
	for name, tc := range map[string]struct {
		rs map[int][]NodeIndex
		ok bool
	}{
		"resolution in order": {map[int][]NodeIndex{0: {2}, 1: {4, 6}, 2: {8, 13}}, true},
		"empty resolutions":   {nil, true},
		"out of order":        {map[int][]NodeIndex{2: {12, 8}}, false},
		"nested":              {map[int][]NodeIndex{2: {9, 8}}, false},
		"nested, parent last": {map[int][]NodeIndex{2: {8, 9}}, false},
		"repeated":            {map[int][]NodeIndex{2: {8, 8}}, false},
		"wrong subtree":       {map[int][]NodeIndex{1: {8}}, false},
		"the committer":       {map[int][]NodeIndex{0: {0}}, false},
		"past the tree":       {map[int][]NodeIndex{2: {15}}, false},
		"top node":            {map[int][]NodeIndex{2: {1<<32 - 1}}, false},
	} {
		u := ktManualPath(0, 3, tc.rs)
		enc, err := AppendUpdatePath(nil, u)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrUpdatePath)) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err == nil {
			if back, err := ParseUpdatePath(enc); err != nil || !ktEqualPaths(back, u) {
				t.Errorf("%s: parses back as %v", name, err)
			}
		}
	}
	deep := &UpdatePath{Nodes: make([]UpdatePathNode, maxPathDepth+1)}
	if _, err := AppendUpdatePath(nil, deep); !errors.Is(err, ErrUpdatePath) {
		t.Errorf("32 levels: %v", err)
	}
}

func ktEqualPaths(a, b *UpdatePath) bool {
	return a.Committer == b.Committer && a.LeafKey == b.LeafKey &&
		slices.EqualFunc(a.Nodes, b.Nodes, func(x, y UpdatePathNode) bool {
			return x.PublicKey == y.PublicKey && slices.Equal(x.Ciphertexts, y.Ciphertexts)
		})
}

func TestUpdatePathPublicKeys(t *testing.T) {
	g := newKTGroup(t, 8, ktLeaves(8), ktFull)
	up, keys, _, err := Commit(g.tree, 5, g.secret(), ktContext(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	pks, err := up.PublicKeys()
	if err != nil {
		t.Fatal(err)
	}
	var nodes []NodeIndex
	for i, pk := range pks {
		nodes = append(nodes, pk.Node)
		want := up.LeafKey
		if i > 0 {
			want = up.Nodes[i-1].PublicKey
		}
		if held, ok := keys.PublicKey(pk.Node); pk.Key != want || !ok || held != want {
			t.Fatalf("node %d: key differs from the path's or the committer's", pk.Node)
		}
	}
	if !slices.Equal(nodes, []NodeIndex{10, 9, 11, 7}) {
		t.Fatalf("nodes %v, want leaf 5's node and direct path", nodes)
	}
	if _, err := ktManualPath(4, 2, nil).PublicKeys(); !errors.Is(err, ErrUpdatePath) {
		t.Fatalf("committer outside: %v", err)
	}
}

func TestKeyZero(t *testing.T) {
	g := newKTGroup(t, 8, ktLeaves(8), ktFull)
	_, keys, _, err := Commit(g.tree, 2, g.secret(), ktContext(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	held := keys.held // the backing array Zero must clear
	if len(held) != 4 {
		t.Fatalf("committer holds %d keys, want its leaf and 3 parents", len(held))
	}
	keys.Zero()
	for _, h := range held {
		if h.priv != ([PublicKeySize]byte{}) {
			t.Fatalf("private key of node %d survives Zero", h.node)
		}
	}
	if _, ok := keys.PublicKey(4); ok {
		t.Fatal("zeroed keys still hold the leaf")
	}
	keys.Zero()
}

// FuzzParseUpdatePath: whatever ParseUpdatePath accepts re-encodes to the
// input and parses again to the same path; the rest is refused with
// ErrUpdatePath.
func FuzzParseUpdatePath(f *testing.F) {
	for _, tc := range []struct {
		n        uint32
		members  []LeafIndex
		nonBlank func(NodeIndex) bool
	}{
		{1, []LeafIndex{0}, ktFull},
		{4, []LeafIndex{0, 1, 2}, ktBlank},
		{8, ktLeaves(8), ktFull},
	} {
		g := newKTGroup(f, tc.n, tc.members, tc.nonBlank)
		up, _, _, err := Commit(g.tree, 0, g.secret(), ktContext(1), nil)
		if err != nil {
			f.Fatal(err)
		}
		enc, err := AppendUpdatePath(nil, up)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseUpdatePath(b)
		if err != nil {
			if !errors.Is(err, ErrUpdatePath) {
				t.Fatalf("ParseUpdatePath: %v does not wrap ErrUpdatePath", err)
			}
			return
		}
		enc, err := AppendUpdatePath(nil, u)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("accepted bytes re-encode differently: %v", err)
		}
		again, err := ParseUpdatePath(enc)
		if err != nil || !ktEqualPaths(again, u) {
			t.Fatalf("second parse: %v", err)
		}
		if _, err := u.PublicKeys(); err != nil {
			t.Fatalf("PublicKeys of a parsed path: %v", err)
		}
	})
}

// BenchmarkCommit1024 is a committer's cost in a tree of 1,024 leaves,
// Commit and encoding, with the encoded size and the ciphertext count:
// "update" in a tree without blanks (log2(n) = 10 seals, 11 key pairs);
// "remove" excludes leaf 1023, far from committer 0, whose subtree then
// resolves to 9 nodes; "add" follows the addition of leaf 1023, whose
// direct path is blank, so that subtree resolves to 10.
func BenchmarkCommit1024(b *testing.B) {
	g := newKTGroup(b, 1024, ktLeaves(1024), ktFull)
	added := g.tree.clone()
	leafKey := added.keys[2046]
	added.blankPath(1023)
	added.keys[2046] = leafKey
	ctx := ktContext(1)
	for _, bc := range []struct {
		name     string
		view     KEMView
		excluded []LeafIndex
	}{
		{"update", g.tree, nil},
		{"remove", g.tree, []LeafIndex{1023}},
		{"add", added, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var size, cts int
			for b.Loop() {
				up, keys, _, err := Commit(bc.view, 0, g.secret(), ctx, bc.excluded)
				if err != nil {
					b.Fatal(err)
				}
				enc, err := AppendUpdatePath(nil, up)
				if err != nil {
					b.Fatal(err)
				}
				size, cts = len(enc), ktCiphertexts(up)
				keys.Zero()
			}
			b.ReportMetric(float64(size), "bytes/commit")
			b.ReportMetric(float64(cts), "ciphertexts/commit")
		})
	}
}

// BenchmarkProcess1024 is a receiving member's cost, parsing included, for
// the commit of leaf 0 in a tree of 1,024 leaves: "far" is a leaf in the
// other half (one open, one key derivation), "near" the committer's
// sibling (one open, ten derivations), "mean" every other leaf in turn.
func BenchmarkProcess1024(b *testing.B) {
	g := newKTGroup(b, 1024, ktLeaves(1024), ktFull)
	ctx := ktContext(1)
	up, _, _, err := Commit(g.tree, 0, g.secret(), ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := AppendUpdatePath(nil, up)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name      string
		receivers []LeafIndex
	}{
		{"far", []LeafIndex{1023}},
		{"near", []LeafIndex{1}},
		{"mean", ktLeaves(1024)[1:]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				u, err := ParseUpdatePath(enc)
				if err != nil {
					b.Fatal(err)
				}
				_, keys, err := Process(g.tree, g.keys[bc.receivers[i%len(bc.receivers)]], u, ctx)
				if err != nil {
					b.Fatal(err)
				}
				keys.Zero()
				i++
			}
		})
	}
}
