package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's on-disk layout, as far as the quick check needs it (bbolt
// internal/common: page.go, meta.go). Integers are in the machine's byte
// order, which is little-endian on every platform aurad is built for.
const (
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	metaOffset       = pageHeaderSize
	metaChecksumEnd  = metaOffset + 56 // checksum covers the meta up to its own field
	metaSize         = 64
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pgidNoFreelist   = ^uint64(0)
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	minPageSize      = 1024
	maxPageSize      = 1 << 16
)

// boltMeta is a decoded meta page.
type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64 // high-water mark: every page below it is in the file
	txid     uint64
}

type pageHeader struct {
	id       uint64
	flags    uint16
	count    uint16
	overflow uint32
}

func decodePageHeader(b []byte) pageHeader {
	return pageHeader{
		id:       binary.LittleEndian.Uint64(b[0:]),
		flags:    binary.LittleEndian.Uint16(b[8:]),
		count:    binary.LittleEndian.Uint16(b[10:]),
		overflow: binary.LittleEndian.Uint32(b[12:]),
	}
}

// decodeMeta reads and validates the meta page in b (a whole page, or at
// least its header and meta). It checks what bbolt checks (magic, version,
// checksum) before trusting any field.
func decodeMeta(b []byte, want uint64) (boltMeta, error) {
	if len(b) < metaOffset+metaSize {
		return boltMeta{}, errors.New("short meta page")
	}
	h := decodePageHeader(b)
	m := b[metaOffset:]
	switch {
	case binary.LittleEndian.Uint32(m[0:]) != boltMagic:
		return boltMeta{}, errors.New("not a bbolt meta page (bad magic)")
	case binary.LittleEndian.Uint32(m[4:]) != boltVersion:
		return boltMeta{}, fmt.Errorf("bbolt format version %d, want %d", binary.LittleEndian.Uint32(m[4:]), boltVersion)
	}
	sum := fnv.New64a()
	sum.Write(b[metaOffset:metaChecksumEnd])
	if sum.Sum64() != binary.LittleEndian.Uint64(m[56:]) {
		return boltMeta{}, errors.New("meta page checksum mismatch")
	}
	if h.flags != metaPageFlag || h.id != want {
		return boltMeta{}, fmt.Errorf("meta page %d has header id %d flags %#x", want, h.id, h.flags)
	}
	meta := boltMeta{
		pageSize: binary.LittleEndian.Uint32(m[8:]),
		root:     binary.LittleEndian.Uint64(m[16:]),
		freelist: binary.LittleEndian.Uint64(m[32:]),
		pgid:     binary.LittleEndian.Uint64(m[40:]),
		txid:     binary.LittleEndian.Uint64(m[48:]),
	}
	if meta.pageSize < minPageSize || meta.pageSize > maxPageSize || meta.pageSize&(meta.pageSize-1) != 0 {
		return boltMeta{}, fmt.Errorf("page size %d", meta.pageSize)
	}
	return meta, nil
}

// quickCheck is the structural check run before bbolt maps a file: the meta
// pages, the file's size against the pages the meta says exist, the freelist
// and the root page. It reads a handful of pages, so it costs microseconds
// whatever the size of the journal; it catches truncation and damage to the
// pages bbolt reads at open, where bbolt itself would panic or fault.
// Damage deeper in the tree is found when read (see guarded) or by CheckFile.
func quickCheck(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return fmt.Errorf("%w: %s is empty (0 bytes)", ErrDamaged, path)
	}
	meta, err := readMetas(f, size)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrDamaged, path, err)
	}
	if err := checkPages(f, size, meta); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrDamaged, path, err)
	}
	return nil
}

// readMetas returns the meta bbolt would use: of the two meta pages, the valid
// one with the higher transaction id. A single damaged meta page is survivable
// (bbolt falls back to the other, losing at most the last transaction).
func readMetas(f io.ReaderAt, size int64) (boltMeta, error) {
	buf := make([]byte, metaOffset+metaSize)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return boltMeta{}, fmt.Errorf("file of %d bytes is too short for a meta page", size)
	}
	m0, err0 := decodeMeta(buf, 0)
	pageSizes := []int64{int64(os.Getpagesize()), 4096, 8192, 16384, 32768, 65536}
	if err0 == nil {
		pageSizes = []int64{int64(m0.pageSize)}
	}
	var m1 boltMeta
	err1 := errors.New("second meta page not found")
	for _, ps := range pageSizes {
		if _, err := f.ReadAt(buf, ps); err != nil {
			continue
		}
		if m, err := decodeMeta(buf, 1); err == nil {
			m1, err1 = m, nil
			break
		} else if err0 == nil {
			err1 = err
		}
	}
	switch {
	case err0 != nil && err1 != nil:
		return boltMeta{}, fmt.Errorf("both meta pages are invalid (%v; %v)", err0, err1)
	case err0 != nil:
		return m1, nil
	case err1 != nil:
		return m0, nil
	case m1.pageSize != m0.pageSize:
		return boltMeta{}, fmt.Errorf("meta pages disagree on the page size (%d, %d)", m0.pageSize, m1.pageSize)
	case m1.txid > m0.txid:
		return m1, nil
	default:
		return m0, nil
	}
}

func checkPages(f io.ReaderAt, size int64, m boltMeta) error {
	ps := int64(m.pageSize)
	if m.pgid < 4 {
		return fmt.Errorf("high-water mark of %d pages", m.pgid)
	}
	if m.pgid > uint64(size/ps) {
		return fmt.Errorf("truncated: the file has %d bytes (%d pages) but its meta says %d pages of %d bytes",
			size, size/ps, m.pgid, ps)
	}
	readPage := func(id uint64) (pageHeader, []byte, error) {
		head := make([]byte, pageHeaderSize)
		if _, err := f.ReadAt(head, int64(id)*ps); err != nil {
			return pageHeader{}, nil, fmt.Errorf("page %d: %v", id, err)
		}
		h := decodePageHeader(head)
		if h.id != id {
			return h, nil, fmt.Errorf("page %d identifies itself as page %d", id, h.id)
		}
		if id+uint64(h.overflow) >= m.pgid {
			return h, nil, fmt.Errorf("page %d with %d overflow pages runs past the high-water mark %d", id, h.overflow, m.pgid)
		}
		whole := make([]byte, (int64(h.overflow)+1)*ps)
		if _, err := f.ReadAt(whole, int64(id)*ps); err != nil {
			return h, nil, fmt.Errorf("page %d: %v", id, err)
		}
		return h, whole, nil
	}
	if m.root < 2 || m.root >= m.pgid {
		return fmt.Errorf("root page %d outside the file's %d pages", m.root, m.pgid)
	}
	h, _, err := readPage(m.root)
	if err != nil {
		return fmt.Errorf("root bucket: %v", err)
	}
	if h.flags != branchPageFlag && h.flags != leafPageFlag {
		return fmt.Errorf("root page %d has flags %#x, want a branch or leaf page", m.root, h.flags)
	}
	if m.freelist == pgidNoFreelist {
		return nil
	}
	if m.freelist < 2 || m.freelist >= m.pgid {
		return fmt.Errorf("freelist page %d outside the file's %d pages", m.freelist, m.pgid)
	}
	h, page, err := readPage(m.freelist)
	if err != nil {
		return fmt.Errorf("freelist: %v", err)
	}
	if h.flags != freelistPageFlag {
		return fmt.Errorf("freelist page %d has flags %#x, want a freelist page", m.freelist, h.flags)
	}
	data := page[pageHeaderSize:]
	n := uint64(h.count)
	if h.count == 0xFFFF {
		// Overflowed count: the real one is the first element.
		if len(data) < 8 {
			return errors.New("freelist page too short for its count")
		}
		n = binary.LittleEndian.Uint64(data)
		data = data[8:]
	}
	if n > uint64(len(data))/8 {
		return fmt.Errorf("freelist claims %d pages but holds room for %d", n, len(data)/8)
	}
	for i := uint64(0); i < n; i++ {
		id := binary.LittleEndian.Uint64(data[i*8:])
		if id < 2 || id >= m.pgid {
			return fmt.Errorf("freelist names page %d outside the file's %d pages", id, m.pgid)
		}
	}
	return nil
}
