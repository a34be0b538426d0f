package journal

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"
	"unsafe"

	"github.com/aura-p2p/aura/internal/core"
)

// The range aggregate is an in-memory B+tree over one namespace's fact keys in
// (lamport, id) order. Every node carries the count and the sum of the ids
// (as 256-bit big-endian integers, mod 2^256) under it, so the count and sum of
// any range is a difference of two prefix aggregates found in one root-to-leaf
// descent each: O(log n), whatever the range's size. Facts are never removed,
// so the tree only grows and needs no merging or rebalancing beyond splits.

// Node capacities. A full leaf's keys fill exactly one 4 KiB allocation
// (102 × 40 bytes + a few spare), which keeps a bulk-loaded tree near 41 bytes
// per fact; inner nodes are small because there are 1/102 as many of them.
const (
	defaultLeafCap  = 102
	defaultInnerCap = 32
)

// sum256 is a 256-bit unsigned integer, least significant limb first.
type sum256 [4]uint64

func idSum(id *core.FactID) sum256 {
	return sum256{
		binary.BigEndian.Uint64(id[24:]),
		binary.BigEndian.Uint64(id[16:]),
		binary.BigEndian.Uint64(id[8:]),
		binary.BigEndian.Uint64(id[0:]),
	}
}

func (s *sum256) add(o sum256) {
	var c uint64
	s[0], c = bits.Add64(s[0], o[0], 0)
	s[1], c = bits.Add64(s[1], o[1], c)
	s[2], c = bits.Add64(s[2], o[2], c)
	s[3], _ = bits.Add64(s[3], o[3], c)
}

func (s *sum256) sub(o sum256) {
	var b uint64
	s[0], b = bits.Sub64(s[0], o[0], 0)
	s[1], b = bits.Sub64(s[1], o[1], b)
	s[2], b = bits.Sub64(s[2], o[2], b)
	s[3], _ = bits.Sub64(s[3], o[3], b)
}

func (s *sum256) addID(id *core.FactID) { s.add(idSum(id)) }

// bytes is the big-endian encoding.
func (s sum256) bytes() [32]byte {
	var b [32]byte
	binary.BigEndian.PutUint64(b[0:], s[3])
	binary.BigEndian.PutUint64(b[8:], s[2])
	binary.BigEndian.PutUint64(b[16:], s[1])
	binary.BigEndian.PutUint64(b[24:], s[0])
	return b
}

// agg is what a node knows of the keys under it.
type agg struct {
	count uint64
	sum   sum256
}

func (a *agg) add(o agg) { a.count += o.count; a.sum.add(o.sum) }
func (a *agg) sub(o agg) { a.count -= o.count; a.sum.sub(o.sum) }

func (a *agg) addKeys(ks []FactKey) {
	for i := range ks {
		a.sum.addID(&ks[i].ID)
	}
	a.count += uint64(len(ks))
}

func (a *agg) subKeys(ks []FactKey) {
	for i := range ks {
		a.sum.sub(idSum(&ks[i].ID))
	}
	a.count -= uint64(len(ks))
}

func cmpKey(a, b *FactKey) int {
	if c := cmp.Compare(a.Lamport, b.Lamport); c != 0 {
		return c
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

// aggNode is a leaf (kids == nil; keys are the facts' keys) or an inner node
// (keys[i] is the least key under kids[i]).
type aggNode struct {
	agg
	keys []FactKey
	kids []*aggNode
}

// aggTree is the aggregate of one namespace. Not safe for concurrent use; see
// nsRanges for the locking.
type aggTree struct {
	root              *aggNode
	leafCap, innerCap int
}

func newAggTree(leafCap, innerCap int) *aggTree {
	return &aggTree{root: &aggNode{keys: make([]FactKey, 0, leafCap)}, leafCap: leafCap, innerCap: innerCap}
}

func (t *aggTree) count() uint64 { return t.root.count }

// search returns the first index whose key is >= k.
func search(keys []FactKey, k *FactKey) int {
	return sort.Search(len(keys), func(i int) bool { return cmpKey(&keys[i], k) >= 0 })
}

// child returns the index of the child whose keys k would fall among.
func (n *aggNode) child(k *FactKey) int {
	i := sort.Search(len(n.keys), func(i int) bool { return cmpKey(&n.keys[i], k) > 0 })
	return max(i-1, 0)
}

// before adds to a the aggregate of n's first i entries, from whichever side
// of i is shorter.
func (n *aggNode) before(a *agg, i int) {
	if n.kids == nil {
		if i <= len(n.keys)/2 {
			a.addKeys(n.keys[:i])
		} else {
			a.add(n.agg)
			a.subKeys(n.keys[i:])
		}
		return
	}
	if i <= len(n.kids)/2 {
		for _, c := range n.kids[:i] {
			a.add(c.agg)
		}
	} else {
		a.add(n.agg)
		for _, c := range n.kids[i:] {
			a.sub(c.agg)
		}
	}
}

// prefix is the aggregate of the keys < k.
func (t *aggTree) prefix(k *FactKey) agg {
	var a agg
	n := t.root
	for n.kids != nil {
		i := n.child(k)
		n.before(&a, i)
		n = n.kids[i]
	}
	n.before(&a, search(n.keys, k))
	return a
}

// atRank returns the aggregate of the first r keys and, if r < count, the key
// of rank r (counting from 0).
func (t *aggTree) atRank(r uint64) (agg, FactKey, bool) {
	var a agg
	if r >= t.root.count {
		return t.root.agg, FactKey{}, false
	}
	n := t.root
	for n.kids != nil {
		i := 0
		for ; r >= n.kids[i].count; i++ {
			r -= n.kids[i].count
		}
		n.before(&a, i)
		n = n.kids[i]
	}
	n.before(&a, int(r))
	return a, n.keys[r], true
}

// ascend calls fn on the keys >= lo, in order, until fn returns false.
func (t *aggTree) ascend(lo *FactKey, fn func(*FactKey) bool) {
	t.root.ascend(lo, fn)
}

func (n *aggNode) ascend(lo *FactKey, fn func(*FactKey) bool) bool {
	if n.kids == nil {
		for i := search(n.keys, lo); i < len(n.keys); i++ {
			if !fn(&n.keys[i]) {
				return false
			}
		}
		return true
	}
	for i := n.child(lo); i < len(n.kids); i++ {
		if !n.kids[i].ascend(lo, fn) {
			return false
		}
	}
	return true
}

// insert adds k; it reports false if k was already present.
func (t *aggTree) insert(k FactKey) bool {
	added, sib := t.root.insert(t, &k)
	if sib != nil {
		old := t.root
		root := &aggNode{
			agg:  old.agg,
			keys: make([]FactKey, 2, t.innerCap),
			kids: make([]*aggNode, 2, t.innerCap),
		}
		root.add(sib.agg)
		root.keys[0], root.keys[1] = old.keys[0], sib.keys[0]
		root.kids[0], root.kids[1] = old, sib
		t.root = root
	}
	return added
}

// insert adds k under n and returns the new right sibling if n split.
func (n *aggNode) insert(t *aggTree, k *FactKey) (bool, *aggNode) {
	if n.kids == nil {
		i := search(n.keys, k)
		if i < len(n.keys) && cmpKey(&n.keys[i], k) == 0 {
			return false, nil
		}
		n.count++
		n.sum.addID(&k.ID)
		if len(n.keys) < t.leafCap {
			n.keys = slicesInsert(n.keys, i, *k)
			return true, nil
		}
		sib := n.splitLeaf(t, i)
		if i < len(n.keys) {
			n.keys = slicesInsert(n.keys, i, *k)
			n.sub(sib.agg)
		} else {
			sib.keys = slicesInsert(sib.keys, i-len(n.keys), *k)
			// The new key is already counted in n; move it to sib.
			n.sub(sib.agg)
			sib.count++
			sib.sum.addID(&k.ID)
			n.count--
			n.sum.sub(idSum(&k.ID))
		}
		return true, sib
	}
	i := n.child(k)
	added, split := n.kids[i].insert(t, k)
	if !added {
		return false, nil
	}
	n.count++
	n.sum.addID(&k.ID)
	if cmpKey(k, &n.keys[0]) < 0 {
		n.keys[0] = *k
	}
	if split == nil {
		return true, nil
	}
	i++
	if len(n.kids) < t.innerCap {
		n.keys = slicesInsert(n.keys, i, split.keys[0])
		n.kids = slicesInsert(n.kids, i, split)
		return true, nil
	}
	sib := n.splitInner(t, i)
	if i < len(n.kids) {
		n.keys = slicesInsert(n.keys, i, split.keys[0])
		n.kids = slicesInsert(n.kids, i, split)
	} else {
		j := i - len(n.kids)
		sib.keys = slicesInsert(sib.keys, j, split.keys[0])
		sib.kids = slicesInsert(sib.kids, j, split)
	}
	// n's aggregate counts everything under both halves; hand sib's part over.
	for _, c := range sib.kids {
		sib.add(c.agg)
	}
	n.sub(sib.agg)
	return true, sib
}

// splitPoint says where a full node splits when an entry is to go in at i. An
// entry past the end (facts mostly arrive in lamport order) leaves the node
// full and starts a new one, so appends keep the tree packed; anywhere else
// the node splits in half.
func splitPoint(i, n int) int {
	if i == n {
		return n
	}
	return n / 2
}

// splitLeaf moves the keys from the split point on into a new leaf with their
// aggregate; the caller adjusts n's.
func (n *aggNode) splitLeaf(t *aggTree, i int) *aggNode {
	p := splitPoint(i, len(n.keys))
	sib := &aggNode{keys: make([]FactKey, len(n.keys)-p, t.leafCap)}
	copy(sib.keys, n.keys[p:])
	sib.addKeys(sib.keys)
	n.keys = n.keys[:p]
	return sib
}

// splitInner moves the children from the split point on into a new node; the
// caller computes the aggregates once the new child is placed.
func (n *aggNode) splitInner(t *aggTree, i int) *aggNode {
	p := splitPoint(i, len(n.kids))
	sib := &aggNode{
		keys: make([]FactKey, len(n.kids)-p, t.innerCap),
		kids: make([]*aggNode, len(n.kids)-p, t.innerCap),
	}
	copy(sib.keys, n.keys[p:])
	copy(sib.kids, n.kids[p:])
	clear(n.kids[p:])
	n.keys = n.keys[:p]
	n.kids = n.kids[:p]
	return sib
}

// slicesInsert inserts v at i within s's capacity, which the caller ensured.
func slicesInsert[T any](s []T, i int, v T) []T {
	s = s[:len(s)+1]
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

// memBytes is the memory the tree holds: node structs and their arrays at
// capacity (allocator rounding not included).
func (t *aggTree) memBytes() int {
	var walk func(n *aggNode) int
	walk = func(n *aggNode) int {
		b := int(unsafe.Sizeof(*n)) + cap(n.keys)*int(unsafe.Sizeof(FactKey{})) + cap(n.kids)*int(unsafe.Sizeof(n))
		for _, c := range n.kids {
			b += walk(c)
		}
		return b
	}
	return walk(t.root)
}

// treeBuilder bulk-loads a tree from keys given in strictly increasing order,
// packing every node full: the rebuild from a namespace's bucket, whose cursor
// yields keys in that order.
type treeBuilder struct {
	t      *aggTree
	leaves []*aggNode
	last   *FactKey
}

func newTreeBuilder(leafCap, innerCap int) *treeBuilder {
	return &treeBuilder{t: &aggTree{leafCap: leafCap, innerCap: innerCap}}
}

func (b *treeBuilder) add(k FactKey) error {
	if b.last != nil && cmpKey(b.last, &k) >= 0 {
		return fmt.Errorf("fact key %d/%s after %d/%s is out of order: %w", k.Lamport, k.ID, b.last.Lamport, b.last.ID, ErrCorrupt)
	}
	var leaf *aggNode
	if n := len(b.leaves); n > 0 && len(b.leaves[n-1].keys) < b.t.leafCap {
		leaf = b.leaves[n-1]
	} else {
		leaf = &aggNode{keys: make([]FactKey, 0, b.t.leafCap)}
		b.leaves = append(b.leaves, leaf)
	}
	leaf.keys = append(leaf.keys, k)
	leaf.count++
	leaf.sum.addID(&k.ID)
	b.last = &leaf.keys[len(leaf.keys)-1]
	return nil
}

func (b *treeBuilder) finish() *aggTree {
	t := b.t
	level := b.leaves
	if len(level) == 0 {
		return newAggTree(t.leafCap, t.innerCap)
	}
	for len(level) > 1 {
		var up []*aggNode
		for len(level) > 0 {
			m := min(len(level), t.innerCap)
			n := &aggNode{keys: make([]FactKey, m, t.innerCap), kids: make([]*aggNode, m, t.innerCap)}
			for i, c := range level[:m] {
				n.keys[i] = c.keys[0]
				n.kids[i] = c
				n.add(c.agg)
			}
			up = append(up, n)
			level = level[m:]
		}
		level = up
	}
	t.root = level[0]
	return t
}
