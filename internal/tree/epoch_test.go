package tree

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

// fixtureKeys is the PathKeys of fixture i at leaf, from the private key
// newFixture's HPKE key comes from.
func fixtureKeys(t *testing.T, i int, leaf LeafIndex) *PathKeys {
	t.Helper()
	seed := sha256.Sum256(fmt.Appendf(nil, "tree test hpke %d", i))
	k, err := LeafKeys(leaf, seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The tree holds what update paths give its parent nodes, AddLeaf and
// RemoveLeaf blank the touched leaf's direct path, and members process each
// other's paths on the state they were made on: the same root secret for
// every member, nothing for a removed one.
func TestStateKeysFollowOps(t *testing.T) {
	w := newWorld(t, 4, 0, Any(), SingleSigner{})
	g := w.genesis
	keys := make([]*PathKeys, 4)
	for i := range keys {
		keys[i] = fixtureKeys(t, i, LeafIndex(i))
	}
	ctx := []byte("account")
	commit := func(s *State, by LeafIndex, seed byte) (*State, *UpdatePath, [SecretSize]byte) {
		t.Helper()
		up, k, root, err := Commit(s, by, [SecretSize]byte{seed}, ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		path, err := AppendUpdatePath(nil, up)
		if err != nil {
			t.Fatal(err)
		}
		next := mustApply(t, s, w.sign(t, s, by, UpdatePathBody{Leaf: by, HPKE: up.LeafKey, Path: path}), w.att)
		keys[by] = k
		return next, up, root
	}
	for x := NodeIndex(1); x < 7; x += 2 {
		if _, ok := g.NodeKey(x); ok {
			t.Fatalf("genesis parent node %d has a key", x)
		}
	}

	s1, up, root := commit(g, 0, 1)
	pubs, err := up.PublicKeys()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pubs {
		if got, ok := s1.NodeKey(p.Node); !ok || !bytes.Equal(got, p.Key[:]) {
			t.Fatalf("node %d after the update: %x, %v; want %x", p.Node, got, ok, p.Key)
		}
	}
	for i := 1; i < 4; i++ {
		got, next, err := Process(g, keys[i], up, ctx)
		if err != nil || got != root {
			t.Fatalf("member %d: %v, same root %v", i, err, got == root)
		}
		keys[i] = next
	}

	s2 := mustApply(t, s1, w.sign(t, s1, 0, RemoveLeafBody{Leaf: 3}), w.att)
	for _, x := range []NodeIndex{5, 3} { // leaf 3's direct path
		if _, ok := s2.NodeKey(x); ok {
			t.Fatalf("node %d keeps its key after its leaf's removal", x)
		}
	}
	if _, ok := s2.NodeKey(1); !ok {
		t.Fatal("a removal blanked a node off the removed leaf's path")
	}

	_, up, root = commit(s2, 1, 2)
	for _, i := range []int{0, 2} {
		got, _, err := Process(s2, keys[i], up, ctx)
		if err != nil || got != root {
			t.Fatalf("member %d after the removal: %v, same root %v", i, err, got == root)
		}
	}
	if _, _, err := Process(s2, keys[3], up, ctx); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("the removed member processed the next path: %v", err)
	}
}

func TestEpochSecretChain(t *testing.T) {
	a, b := [SecretSize]byte{1}, [SecretSize]byte{2}
	commit := [SecretSize]byte{3}
	derive := func(prev [SecretSize]byte, c *[SecretSize]byte, ctx string) [SecretSize]byte {
		t.Helper()
		s, err := EpochSecret(prev, c, []byte(ctx))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := derive(a, nil, "ctx")
	for _, c := range []struct {
		name string
		got  [SecretSize]byte
	}{
		{"another previous secret", derive(b, nil, "ctx")},
		{"a commit secret", derive(a, &commit, "ctx")},
		{"another context", derive(a, nil, "ctx2")},
	} {
		if c.got == base {
			t.Errorf("%s gives the same epoch secret", c.name)
		}
	}
	if derive(a, nil, "ctx") != base {
		t.Fatal("epoch secret is not deterministic")
	}
}

func TestPathKeysEncoding(t *testing.T) {
	w := newWorld(t, 4, 0, Any(), SingleSigner{})
	_, k, _, err := Commit(w.genesis, 2, [SecretSize]byte{9}, []byte("c"), nil)
	if err != nil {
		t.Fatal(err)
	}
	enc := AppendPathKeys(nil, k)
	got, err := ParsePathKeys(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Leaf() != 2 || len(got.held) != len(k.held) {
		t.Fatalf("round trip: leaf %d, %d keys", got.Leaf(), len(got.held))
	}
	for _, h := range k.held {
		if pub, ok := got.PublicKey(h.node); !ok || pub != h.pub {
			t.Fatalf("node %d: key lost in the round trip", h.node)
		}
	}
	offPath := bytes.Clone(enc)
	offPath[9] = 0 // the first key's node becomes leaf 0's
	twice := append(bytes.Clone(enc[:6+36]), enc[6:6+36]...)
	twice[5] = 2
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"another version", append([]byte{2}, enc[1:]...)},
		{"truncated", enc[:len(enc)-1]},
		{"trailing byte", append(bytes.Clone(enc), 0)},
		{"node off the leaf's path", offPath},
		{"node twice", twice},
	} {
		if _, err := ParsePathKeys(c.b); !errors.Is(err, core.ErrDataLoss) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestPathKeysCloneAndMatching(t *testing.T) {
	w := newWorld(t, 4, 0, Any(), SingleSigner{})
	up, k, _, err := Commit(w.genesis, 0, [SecretSize]byte{1}, []byte("c"), nil)
	if err != nil {
		t.Fatal(err)
	}
	path, err := AppendUpdatePath(nil, up)
	if err != nil {
		t.Fatal(err)
	}
	s1 := mustApply(t, w.genesis, w.sign(t, w.genesis, 0, UpdatePathBody{Leaf: 0, HPKE: up.LeafKey, Path: path}), w.att)
	c := k.Clone()
	k.Zero()
	if _, ok := c.PublicKey(0); !ok || len(c.held) != 3 {
		t.Fatalf("zeroing the original emptied the clone: %d keys", len(c.held))
	}
	// In s1 every key of leaf 0's path is the tree's; a removal of leaf 1
	// blanks their parent and the root, leaving the leaf's own key.
	if m := c.Matching(s1); len(m.held) != 3 {
		t.Fatalf("%d of 3 keys match the state they were made for", len(m.held))
	}
	s2 := mustApply(t, s1, w.sign(t, s1, 0, RemoveLeafBody{Leaf: 1}), w.att)
	m := c.Matching(s2)
	if _, ok := m.PublicKey(0); !ok || len(m.held) != 1 {
		t.Fatalf("after the removal: %d keys kept", len(m.held))
	}
}
