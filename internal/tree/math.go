package tree

import (
	"fmt"
	"math/bits"

	"github.com/aura-p2p/aura/internal/core"
)

// The array layout of RFC 9420 §4 and Appendix C. The nodes of a tree with n
// leaves sit in one array of NodeWidth(n) = 2n-1 slots: leaf i at node 2i,
// parent nodes at the odd indices between their subtrees, so a subtree is a
// contiguous range and every relation is a few bit operations on the index.
//
// As RFC 9420 requires, n is a power of two: the tree is always full (absent
// members are blank leaves) and grows by doubling. This is what lets Parent
// use the RFC's closed form and keeps every direct path log2(n) long.
//
// Every function that takes an index also takes the leaf count and checks the
// index against it, returning an error rather than panicking: indices arrive
// in peers' ops, and a wrong one must be refused, never followed out of the
// tree. Level and IsLeaf read only the index's bits and cannot fail.

// LeafIndex numbers the leaves left to right from 0.
type LeafIndex uint32

// NodeIndex is a position in the tree's node array.
type NodeIndex uint32

// MaxLeaves is the largest leaf count: the node array of 2^31 leaves has
// 2^32-1 slots, the most a NodeIndex can address.
const MaxLeaves = 1 << 31

// Index errors. Each wraps core.ErrInvalidArgument; the message around it
// names the index and the leaf count.
var (
	// ErrLeafCount: a leaf count that is not a power of two in [1, MaxLeaves].
	ErrLeafCount = fmt.Errorf("leaf count is not a power of two in [1, 2^31]: %w", core.ErrInvalidArgument)
	// ErrIndexRange: a node or leaf index outside the tree.
	ErrIndexRange = fmt.Errorf("index outside the tree: %w", core.ErrInvalidArgument)
	// ErrNoSuchNode: the node is in the tree but has not the asked relative:
	// the root has no parent or sibling, a leaf no children, and a parent node
	// is no leaf.
	ErrNoSuchNode = fmt.Errorf("no such node: %w", core.ErrInvalidArgument)
)

// Level is the height of node x above the leaves: the number of trailing 1
// bits of its index (0 for a leaf).
func Level(x NodeIndex) int {
	return bits.TrailingZeros32(^uint32(x))
}

// IsLeaf reports whether x is a leaf's node (an even index).
func IsLeaf(x NodeIndex) bool {
	return x&1 == 0
}

// NodeWidth is the number of nodes in a tree of n leaves, 2n-1.
func NodeWidth(n uint32) (uint32, error) {
	if err := checkLeafCount(n); err != nil {
		return 0, err
	}
	return nodeWidth(n), nil
}

// Root is the root's node index, n-1: for n = 2^d the RFC's
// (1 << log2(NodeWidth(n))) - 1 is 2^d - 1.
func Root(n uint32) (NodeIndex, error) {
	if err := checkLeafCount(n); err != nil {
		return 0, err
	}
	return NodeIndex(n - 1), nil
}

// LeafNode is the node of leaf l, 2l.
func LeafNode(l LeafIndex, n uint32) (NodeIndex, error) {
	if err := checkLeafCount(n); err != nil {
		return 0, err
	}
	if uint32(l) >= n {
		return 0, fmt.Errorf("leaf %d in a tree of %d leaves: %w", l, n, ErrIndexRange)
	}
	return NodeIndex(2 * l), nil
}

// NodeLeaf is the leaf whose node is x; x must be a leaf's node.
func NodeLeaf(x NodeIndex, n uint32) (LeafIndex, error) {
	if err := checkNode(x, n); err != nil {
		return 0, err
	}
	if !IsLeaf(x) {
		return 0, fmt.Errorf("node %d is a parent, not a leaf: %w", x, ErrNoSuchNode)
	}
	return LeafIndex(x / 2), nil
}

// Left is the left child of the parent node x.
func Left(x NodeIndex, n uint32) (NodeIndex, error) {
	if err := checkParentNode(x, n); err != nil {
		return 0, err
	}
	return left(x), nil
}

// Right is the right child of the parent node x.
func Right(x NodeIndex, n uint32) (NodeIndex, error) {
	if err := checkParentNode(x, n); err != nil {
		return 0, err
	}
	return right(x), nil
}

// Parent is the parent of node x, which must not be the root.
func Parent(x NodeIndex, n uint32) (NodeIndex, error) {
	if err := checkNonRoot(x, n); err != nil {
		return 0, err
	}
	return parent(x), nil
}

// Sibling is the other child of x's parent; x must not be the root.
func Sibling(x NodeIndex, n uint32) (NodeIndex, error) {
	if err := checkNonRoot(x, n); err != nil {
		return 0, err
	}
	return sibling(x), nil
}

// DirectPath lists x's ancestors from its parent up to the root, so
// log2(n) - Level(x) nodes (log2(n) for a leaf; none for the root). TreeKEM
// derives one path secret per entry.
func DirectPath(x NodeIndex, n uint32) ([]NodeIndex, error) {
	if err := checkNode(x, n); err != nil {
		return nil, err
	}
	path := make([]NodeIndex, 0, pathLen(x, n))
	for r := NodeIndex(n - 1); x != r; {
		x = parent(x)
		path = append(path, x)
	}
	return path, nil
}

// Copath lists, for x and each node of its direct path below the root, that
// node's sibling: the subtrees that do not contain x, bottom up. It is as
// long as the direct path, and Copath[i] is the sibling of the node below
// DirectPath[i]; TreeKEM encrypts the path secret of DirectPath[i] to the
// resolution of Copath[i].
func Copath(x NodeIndex, n uint32) ([]NodeIndex, error) {
	if err := checkNode(x, n); err != nil {
		return nil, err
	}
	path := make([]NodeIndex, 0, pathLen(x, n))
	for r := NodeIndex(n - 1); x != r; x = parent(x) {
		path = append(path, sibling(x))
	}
	return path, nil
}

// The unchecked forms below assume a valid n and x in the tree: for a
// non-root x, Level(x) ≤ 30, so no shift leaves 32 bits.

func nodeWidth(n uint32) uint32 {
	// 2(n-1)+1 keeps every intermediate within uint32 for n = 2^31.
	return 2*(n-1) + 1
}

// pathLen is the length of x's direct path: the root's level log2(n) minus x's.
func pathLen(x NodeIndex, n uint32) int {
	return bits.TrailingZeros32(n) - Level(x)
}

func left(x NodeIndex) NodeIndex {
	return x ^ NodeIndex(1)<<(Level(x)-1)
}

func right(x NodeIndex) NodeIndex {
	return x ^ NodeIndex(3)<<(Level(x)-1)
}

// parent sets bit k (making x's level k+1) and clears bit k+1 if it was set:
// a left child's parent is above it to the right, a right child's to the
// left (RFC 9420 Appendix C).
func parent(x NodeIndex) NodeIndex {
	k := Level(x)
	b := (x >> (k + 1)) & 1
	return (x | 1<<k) ^ b<<(k+1)
}

func sibling(x NodeIndex) NodeIndex {
	p := parent(x)
	if x < p {
		return right(p)
	}
	return left(p)
}

func checkLeafCount(n uint32) error {
	if n == 0 || n > MaxLeaves || n&(n-1) != 0 {
		return fmt.Errorf("%d leaves: %w", n, ErrLeafCount)
	}
	return nil
}

func checkNode(x NodeIndex, n uint32) error {
	if err := checkLeafCount(n); err != nil {
		return err
	}
	if uint32(x) >= nodeWidth(n) {
		return fmt.Errorf("node %d in a tree of %d leaves: %w", x, n, ErrIndexRange)
	}
	return nil
}

func checkParentNode(x NodeIndex, n uint32) error {
	if err := checkNode(x, n); err != nil {
		return err
	}
	if IsLeaf(x) {
		return fmt.Errorf("node %d is a leaf and has no children: %w", x, ErrNoSuchNode)
	}
	return nil
}

func checkNonRoot(x NodeIndex, n uint32) error {
	if err := checkNode(x, n); err != nil {
		return err
	}
	if uint32(x) == n-1 {
		return fmt.Errorf("node %d is the root of a tree of %d leaves: %w", x, n, ErrNoSuchNode)
	}
	return nil
}
