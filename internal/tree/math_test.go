package tree

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"pgregory.net/rapid"
)

// mathVector is one entry of the MLS working group's tree-math vector
// (testdata/tree-math.json, a copy of
// shared/reference/mls-vectors/tree-math.json); null means "no such node".
type mathVector struct {
	NLeaves uint32       `json:"n_leaves"`
	NNodes  uint32       `json:"n_nodes"`
	Root    NodeIndex    `json:"root"`
	Left    []*NodeIndex `json:"left"`
	Right   []*NodeIndex `json:"right"`
	Parent  []*NodeIndex `json:"parent"`
	Sibling []*NodeIndex `json:"sibling"`
}

func loadMathVectors(t *testing.T) []mathVector {
	t.Helper()
	raw, err := os.ReadFile("testdata/tree-math.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []mathVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	// The vector covers 1 to 512 leaves; fewer entries means a damaged copy.
	if len(vs) != 10 || vs[0].NLeaves != 1 || vs[9].NLeaves != 512 {
		t.Fatalf("tree-math.json: %d entries, not 1..512 leaves", len(vs))
	}
	return vs
}

func TestTreeMathVector(t *testing.T) {
	for _, v := range loadMathVectors(t) {
		n := v.NLeaves
		if w, err := NodeWidth(n); err != nil || w != v.NNodes {
			t.Fatalf("n=%d: NodeWidth %d, %v; want %d", n, w, err, v.NNodes)
		}
		if r, err := Root(n); err != nil || r != v.Root {
			t.Fatalf("n=%d: Root %d, %v; want %d", n, r, err, v.Root)
		}
		for _, col := range [][]*NodeIndex{v.Left, v.Right, v.Parent, v.Sibling} {
			if uint32(len(col)) != v.NNodes {
				t.Fatalf("n=%d: a column has %d entries, want %d", n, len(col), v.NNodes)
			}
		}
		rels := []struct {
			name string
			f    func(NodeIndex, uint32) (NodeIndex, error)
			want []*NodeIndex
		}{
			{"left", Left, v.Left},
			{"right", Right, v.Right},
			{"parent", Parent, v.Parent},
			{"sibling", Sibling, v.Sibling},
		}
		for x := range NodeIndex(v.NNodes) {
			for _, r := range rels {
				got, err := r.f(x, n)
				switch want := r.want[x]; {
				case want == nil && !errors.Is(err, ErrNoSuchNode):
					t.Fatalf("n=%d: %s(%d) = %d, %v; want ErrNoSuchNode", n, r.name, x, got, err)
				case want != nil && (err != nil || got != *want):
					t.Fatalf("n=%d: %s(%d) = %d, %v; want %d", n, r.name, x, got, err, *want)
				}
			}
			checkPathsAgainstVector(t, v, x)
		}
		for _, r := range rels {
			if _, err := r.f(NodeIndex(v.NNodes), n); !errors.Is(err, ErrIndexRange) {
				t.Fatalf("n=%d: %s(%d) past the end: %v", n, r.name, v.NNodes, err)
			}
		}
	}
}

// checkPathsAgainstVector follows the vector's own parent and sibling
// columns from x to the root and compares DirectPath and Copath with them.
func checkPathsAgainstVector(t *testing.T, v mathVector, x NodeIndex) {
	t.Helper()
	var dp, cp []NodeIndex
	for y := x; v.Parent[y] != nil; y = *v.Parent[y] {
		dp = append(dp, *v.Parent[y])
		cp = append(cp, *v.Sibling[y])
	}
	gotDP, err := DirectPath(x, v.NLeaves)
	if err != nil || !slices.Equal(gotDP, dp) {
		t.Fatalf("n=%d: DirectPath(%d) = %v, %v; want %v", v.NLeaves, x, gotDP, err, dp)
	}
	gotCP, err := Copath(x, v.NLeaves)
	if err != nil || !slices.Equal(gotCP, cp) {
		t.Fatalf("n=%d: Copath(%d) = %v, %v; want %v", v.NLeaves, x, gotCP, err, cp)
	}
	if IsLeaf(x) {
		l, err := NodeLeaf(x, v.NLeaves)
		if err != nil || l != LeafIndex(x/2) {
			t.Fatalf("n=%d: NodeLeaf(%d) = %d, %v", v.NLeaves, x, l, err)
		}
		if y, err := LeafNode(l, v.NLeaves); err != nil || y != x {
			t.Fatalf("n=%d: LeafNode(%d) = %d, %v", v.NLeaves, l, y, err)
		}
	}
}

func TestLevel(t *testing.T) {
	for x, want := range map[NodeIndex]int{0: 0, 2: 0, 1: 1, 5: 1, 3: 2, 11: 2, 7: 3, 1<<31 - 1: 31, 1<<32 - 2: 0, 1<<32 - 1: 32} {
		if got := Level(x); got != want {
			t.Errorf("Level(%d) = %d, want %d", x, got, want)
		}
	}
}

// The largest tree: its indices use all 32 bits, where an overflow in the
// width or a shift would show.
func TestLargestTree(t *testing.T) {
	const n = MaxLeaves
	if w, err := NodeWidth(n); err != nil || w != 1<<32-1 {
		t.Fatalf("NodeWidth = %d, %v", w, err)
	}
	last, err := LeafNode(n-1, n)
	if err != nil || last != 1<<32-2 {
		t.Fatalf("last leaf's node = %d, %v", last, err)
	}
	if p, err := Parent(last, n); err != nil || p != 1<<32-3 {
		t.Fatalf("Parent(last) = %d, %v", p, err)
	}
	dp, err := DirectPath(last, n)
	if err != nil || len(dp) != 31 || dp[30] != 1<<31-1 {
		t.Fatalf("DirectPath(last) = %v, %v", dp, err)
	}
	if r, err := Right(1<<31-1, n); err != nil || r != 3<<30-1 {
		t.Fatalf("Right(root) = %d, %v", r, err)
	}
	if _, err := Parent(1<<32-1, n); !errors.Is(err, ErrIndexRange) {
		t.Fatalf("node 2^32-1: %v", err)
	}
	if _, err := LeafNode(n, n); !errors.Is(err, ErrIndexRange) {
		t.Fatalf("leaf 2^31: %v", err)
	}
}

func TestTreeMathRefusals(t *testing.T) {
	for _, n := range []uint32{0, 3, 6, 12, 1<<31 + 1, 1<<32 - 1} {
		if _, err := NodeWidth(n); !errors.Is(err, ErrLeafCount) {
			t.Errorf("NodeWidth(%d): %v", n, err)
		}
		if _, err := Root(n); !errors.Is(err, ErrLeafCount) {
			t.Errorf("Root(%d): %v", n, err)
		}
		checkRefusals(t, 0, n, ErrLeafCount)
	}
	checkRefusals(t, 7, 4, ErrIndexRange)
	if _, err := LeafNode(4, 4); !errors.Is(err, ErrIndexRange) {
		t.Errorf("LeafNode(4, 4): %v", err)
	}
	if _, err := NodeLeaf(3, 4); !errors.Is(err, ErrNoSuchNode) {
		t.Errorf("NodeLeaf(3, 4): %v", err)
	}
}

// checkRefusals asserts that every index function refuses (x, n) with want,
// which wraps core.ErrInvalidArgument.
func checkRefusals(t *testing.T, x NodeIndex, n uint32, want error) {
	t.Helper()
	errs := map[string]error{}
	_, errs["Left"] = Left(x, n)
	_, errs["Right"] = Right(x, n)
	_, errs["Parent"] = Parent(x, n)
	_, errs["Sibling"] = Sibling(x, n)
	_, errs["DirectPath"] = DirectPath(x, n)
	_, errs["Copath"] = Copath(x, n)
	_, errs["NodeLeaf"] = NodeLeaf(x, n)
	for name, err := range errs {
		if !errors.Is(err, want) || !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%s(%d, %d): %v, want %v", name, x, n, err, want)
		}
	}
}

func TestTreeMathLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := rapid.IntRange(0, 31).Draw(t, "log2n")
		n := uint32(1) << d
		x := NodeIndex(rapid.Uint32Range(0, nodeWidth(n)-1).Draw(t, "x"))
		checkLaws(t, x, n)
	})
}

// FuzzTreeMath feeds the index functions arbitrary indices and leaf counts:
// they must refuse what is outside a valid tree with the right sentinel, and
// answer the rest within the laws. Each input is also folded into a valid
// tree so that most runs reach the answering paths.
func FuzzTreeMath(f *testing.F) {
	f.Add(uint32(0), uint32(1))
	f.Add(uint32(6), uint32(4))
	f.Add(uint32(3), uint32(4))
	f.Add(uint32(9), uint32(4))
	f.Add(uint32(1<<32-2), uint32(1<<31))
	f.Add(uint32(5), uint32(6))
	f.Fuzz(func(t *testing.T, rawX, rawN uint32) {
		x, n := NodeIndex(rawX), rawN
		switch {
		case n == 0 || n > MaxLeaves || n&(n-1) != 0:
			checkRefusals(t, x, n, ErrLeafCount)
		case uint32(x) >= nodeWidth(n):
			checkRefusals(t, x, n, ErrIndexRange)
		default:
			checkLaws(t, x, n)
		}
		n = 1 << (rawN % 32)
		checkLaws(t, NodeIndex(rawX%nodeWidth(n)), n)
	})
}

// tb is what checkLaws needs of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// checkLaws asserts the relations of node x in a valid tree of n leaves.
func checkLaws(t tb, x NodeIndex, n uint32) {
	t.Helper()
	root, err := Root(n)
	if err != nil {
		t.Fatalf("Root(%d): %v", n, err)
	}
	depth := Level(root) // log2(n)
	if NodeIndex(1)<<depth != NodeIndex(n) {
		t.Fatalf("root %d of %d leaves has level %d", root, n, depth)
	}
	must := func(y NodeIndex, err error) NodeIndex {
		t.Helper()
		if err != nil {
			t.Fatalf("node %d of %d leaves: %v", x, n, err)
		}
		return y
	}

	if IsLeaf(x) {
		if _, err := Left(x, n); !errors.Is(err, ErrNoSuchNode) {
			t.Fatalf("Left(leaf %d): %v", x, err)
		}
		if _, err := Right(x, n); !errors.Is(err, ErrNoSuchNode) {
			t.Fatalf("Right(leaf %d): %v", x, err)
		}
		l, err := NodeLeaf(x, n)
		if err != nil || uint32(l) >= n || must(LeafNode(l, n)) != x {
			t.Fatalf("leaf %d: NodeLeaf %d, %v", x, l, err)
		}
	} else {
		l, r := must(Left(x, n)), must(Right(x, n))
		if !(l < x && x < r) || Level(l) != Level(x)-1 || Level(r) != Level(x)-1 {
			t.Fatalf("children of %d: %d, %d", x, l, r)
		}
		if must(Parent(l, n)) != x || must(Parent(r, n)) != x {
			t.Fatalf("children %d, %d of %d do not lead back to it", l, r, x)
		}
		if must(Sibling(l, n)) != r {
			t.Fatalf("children %d, %d of %d are not siblings", l, r, x)
		}
		if _, err := NodeLeaf(x, n); !errors.Is(err, ErrNoSuchNode) {
			t.Fatalf("NodeLeaf(parent %d): %v", x, err)
		}
	}

	if x == root {
		if _, err := Parent(x, n); !errors.Is(err, ErrNoSuchNode) {
			t.Fatalf("Parent(root): %v", err)
		}
		if _, err := Sibling(x, n); !errors.Is(err, ErrNoSuchNode) {
			t.Fatalf("Sibling(root): %v", err)
		}
	} else {
		p, s := must(Parent(x, n)), must(Sibling(x, n))
		if Level(p) != Level(x)+1 || (must(Left(p, n)) != x && must(Right(p, n)) != x) {
			t.Fatalf("%d is not a child of its parent %d", x, p)
		}
		if s == x || must(Sibling(s, n)) != x || must(Parent(s, n)) != p {
			t.Fatalf("sibling %d of %d (parent %d)", s, x, p)
		}
	}

	dp := must2(t, x, n, DirectPath)
	cp := must2(t, x, n, Copath)
	if len(dp) != depth-Level(x) || len(cp) != len(dp) {
		t.Fatalf("node %d of %d leaves: direct path %v, copath %v", x, n, dp, cp)
	}
	if IsLeaf(x) && len(dp) != depth {
		t.Fatalf("leaf %d: direct path of %d, want log2(%d)", x, len(dp), n)
	}
	below := x // the node under dp[i]
	for i, y := range dp {
		if y != must(Parent(below, n)) || cp[i] != must(Sibling(below, n)) || Level(cp[i]) != Level(x)+i {
			t.Fatalf("node %d of %d leaves, step %d: direct path %v, copath %v", x, n, i, dp, cp)
		}
		below = y
	}
	if below != root {
		t.Fatalf("direct path of %d ends at %d, not the root %d", x, below, root)
	}
}

func must2(t tb, x NodeIndex, n uint32, f func(NodeIndex, uint32) ([]NodeIndex, error)) []NodeIndex {
	t.Helper()
	p, err := f(x, n)
	if err != nil {
		t.Fatalf("node %d of %d leaves: %v", x, n, err)
	}
	return p
}
