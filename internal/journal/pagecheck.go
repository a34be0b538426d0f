package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// checkPageTree is the full structural check of a bbolt file, done with plain
// reads rather than through bbolt's mapped pages: bbolt's own Tx.Check walks
// the mapping on a goroutine of its own, where a damaged element that points
// outside the mapping faults the whole process. It checks what bbolt's does:
// every page below the high-water mark is either reachable from the root
// exactly once or free, page headers name their own ids and a known type,
// elements lie inside their pages, and keys are in order within a page and
// within the bounds their parents give them.
func checkPageTree(f io.ReaderAt, size int64, problem func(format string, args ...any)) {
	m, err := readMetas(f, size)
	if err != nil {
		problem("%v", err)
		return
	}
	w := &pageWalker{f: f, ps: int64(m.pageSize), pgid: m.pgid, used: map[uint64]string{}, problem: problem}
	w.use(0, "meta")
	w.use(1, "meta")
	free := map[uint64]bool{}
	if m.freelist != pgidNoFreelist {
		h, page, err := w.read(m.freelist)
		if err != nil || h.flags != freelistPageFlag {
			problem("freelist page %d unreadable (%v)", m.freelist, err)
			return
		}
		for i := uint64(0); i <= uint64(h.overflow); i++ {
			w.use(m.freelist+i, "freelist")
		}
		data := page[pageHeaderSize:]
		n := uint64(h.count)
		if h.count == 0xFFFF {
			n, data = binary.LittleEndian.Uint64(data), data[8:]
		}
		n = min(n, uint64(len(data)/8))
		for i := uint64(0); i < n; i++ {
			id := binary.LittleEndian.Uint64(data[i*8:])
			if free[id] {
				problem("page %d is freed twice", id)
			}
			free[id] = true
		}
	}
	w.walk(m.root, "root", nil, nil, 0)
	for id := uint64(0); id < m.pgid; id++ {
		owner, used := w.used[id]
		switch {
		case used && free[id]:
			problem("page %d is both free and in use by %s", id, owner)
		case !used && !free[id]:
			problem("page %d is neither reachable nor free", id)
		}
	}
}

type pageWalker struct {
	f       io.ReaderAt
	ps      int64
	pgid    uint64
	used    map[uint64]string
	problem func(format string, args ...any)
}

// maxTreeDepth bounds recursion on a damaged file whose pages point in loops.
const maxTreeDepth = 64

func (w *pageWalker) use(id uint64, owner string) bool {
	if prev, ok := w.used[id]; ok {
		w.problem("page %d is used by both %s and %s", id, prev, owner)
		return false
	}
	w.used[id] = owner
	return true
}

func (w *pageWalker) read(id uint64) (pageHeader, []byte, error) {
	if id < 2 || id >= w.pgid {
		return pageHeader{}, nil, fmt.Errorf("page %d outside the file's %d pages", id, w.pgid)
	}
	head := make([]byte, pageHeaderSize)
	if _, err := w.f.ReadAt(head, int64(id)*w.ps); err != nil {
		return pageHeader{}, nil, fmt.Errorf("page %d: %v", id, err)
	}
	h := decodePageHeader(head)
	if h.id != id {
		return h, nil, fmt.Errorf("page %d identifies itself as page %d", id, h.id)
	}
	if id+uint64(h.overflow) >= w.pgid {
		return h, nil, fmt.Errorf("page %d with %d overflow pages runs past the high-water mark", id, h.overflow)
	}
	page := make([]byte, (int64(h.overflow)+1)*w.ps)
	if _, err := w.f.ReadAt(page, int64(id)*w.ps); err != nil {
		return h, nil, fmt.Errorf("page %d: %v", id, err)
	}
	return h, page, nil
}

// walk checks the subtree at page id, whose keys must lie in [lo, hi) (nil
// for unbounded).
func (w *pageWalker) walk(id uint64, path string, lo, hi []byte, depth int) {
	if depth > maxTreeDepth {
		w.problem("%s: tree deeper than %d at page %d (a loop?)", path, maxTreeDepth, id)
		return
	}
	h, page, err := w.read(id)
	if err != nil {
		w.problem("%s: %v", path, err)
		return
	}
	for i := uint64(0); i <= uint64(h.overflow); i++ {
		if !w.use(id+i, path) {
			return
		}
	}
	switch h.flags {
	case branchPageFlag:
		w.branch(page, h.count, id, path, lo, hi, depth)
	case leafPageFlag:
		w.leaf(page, h.count, fmt.Sprintf("%s page %d", path, id), lo, hi, depth)
	default:
		w.problem("%s: page %d has type %#x where a branch or leaf belongs", path, id, h.flags)
	}
}

func (w *pageWalker) branch(page []byte, count uint16, id uint64, path string, lo, hi []byte, depth int) {
	const elemSize = 16 // pos u32, ksize u32, pgid u64
	type child struct {
		key []byte
		id  uint64
	}
	var children []child
	for i := 0; i < int(count); i++ {
		off := pageHeaderSize + i*elemSize
		if off+elemSize > len(page) {
			w.problem("%s: branch page %d: element %d outside the page", path, id, i)
			return
		}
		e := page[off:]
		pos, ksize := uint64(binary.LittleEndian.Uint32(e[0:])), uint64(binary.LittleEndian.Uint32(e[4:]))
		start := uint64(off) + pos
		if start+ksize > uint64(len(page)) {
			w.problem("%s: branch page %d: key %d outside the page", path, id, i)
			return
		}
		children = append(children, child{key: page[start : start+ksize], id: binary.LittleEndian.Uint64(e[8:])})
	}
	if len(children) == 0 {
		w.problem("%s: branch page %d is empty", path, id)
		return
	}
	for i, c := range children {
		w.checkKey(fmt.Sprintf("%s branch page %d", path, id), i, c.key, lo, hi)
		if i > 0 && bytes.Compare(children[i-1].key, c.key) >= 0 {
			w.problem("%s: branch page %d: keys %d and %d out of order", path, id, i-1, i)
		}
		childHi := hi
		if i+1 < len(children) {
			childHi = children[i+1].key
		}
		w.walk(c.id, path, c.key, childHi, depth+1)
	}
}

func (w *pageWalker) leaf(page []byte, count uint16, where string, lo, hi []byte, depth int) {
	var prev []byte
	forEachLeafElementChecked(page, count, func(i int, flags uint32, k, v []byte, ok bool) {
		if !ok {
			w.problem("%s: element %d outside the page", where, i)
			return
		}
		w.checkKey(where, i, k, lo, hi)
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			w.problem("%s: keys %d and %d out of order", where, i-1, i)
		}
		prev = k
		if flags&bucketLeafFlag == 0 {
			return
		}
		sub := fmt.Sprintf("bucket %q", k)
		if len(v) < 16 {
			w.problem("%s: bucket %q header of %d bytes", where, k, len(v))
			return
		}
		if root := binary.LittleEndian.Uint64(v); root != 0 {
			w.walk(root, sub, nil, nil, depth+1)
			return
		}
		// An inline bucket: its one leaf page is stored in the value.
		inline := v[16:]
		if len(inline) < pageHeaderSize {
			w.problem("%s: inline bucket %q too short", where, k)
			return
		}
		h := decodePageHeader(inline)
		if h.flags != leafPageFlag {
			w.problem("%s: inline bucket %q has page type %#x", where, k, h.flags)
			return
		}
		w.leaf(inline, h.count, sub+" (inline)", nil, nil, depth+1)
	})
}

func (w *pageWalker) checkKey(where string, i int, k, lo, hi []byte) {
	if (lo != nil && bytes.Compare(k, lo) < 0) || (hi != nil && bytes.Compare(k, hi) >= 0) {
		w.problem("%s: key %d (%x) outside the range its parent gives", where, i, k)
	}
}

// forEachLeafElementChecked walks a leaf page's elements (bbolt
// leafPageElement: flags, pos, ksize, vsize as u32, pos relative to the
// element); ok is false for an element whose bounds leave the page.
func forEachLeafElementChecked(page []byte, count uint16, fn func(i int, flags uint32, k, v []byte, ok bool)) {
	const elemSize = 16
	for i := 0; i < int(count); i++ {
		off := pageHeaderSize + i*elemSize
		if off+elemSize > len(page) {
			fn(i, 0, nil, nil, false)
			return
		}
		e := page[off:]
		flags := binary.LittleEndian.Uint32(e[0:])
		pos := uint64(binary.LittleEndian.Uint32(e[4:]))
		ksize := uint64(binary.LittleEndian.Uint32(e[8:]))
		vsize := uint64(binary.LittleEndian.Uint32(e[12:]))
		start := uint64(off) + pos
		if start+ksize+vsize > uint64(len(page)) {
			fn(i, flags, nil, nil, false)
			continue
		}
		fn(i, flags, page[start:start+ksize], page[start+ksize:start+ksize+vsize], true)
	}
}
