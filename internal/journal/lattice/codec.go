package lattice

import (
	"encoding/binary"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
)

// Type tags of the encoded header. They are part of the persisted format:
// never renumber, only add.
const (
	tagGCounter    byte = 0x01
	tagPNCounter   byte = 0x02
	tagMaxRegister byte = 0x03
	tagLWWRegister byte = 0x04
	tagMVRegister  byte = 0x05
	tagGSet        byte = 0x06
	tagORSet       byte = 0x07
	tagORMap       byte = 0x08
	tagCapSet      byte = 0x09
	tagMinRegister byte = 0x0a
)

// formatV1 is the only format so far. A decoder refuses versions it does not
// know rather than guessing, so an old daemon cannot misread newer state.
const formatV1 byte = 1

func appendHeader(dst []byte, tag byte) []byte { return append(dst, tag, formatV1) }

func appendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// reader decodes with a sticky error, so decoders read straight-line and check
// once. After the first error every read returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format+": %w", append(args, core.ErrInvalidArgument)...)
	}
}

func (r *reader) header(tag byte, name string) {
	if r.err != nil {
		return
	}
	if len(r.b) < 2 {
		r.fail("%s: truncated header", name)
		return
	}
	if r.b[0] != tag {
		r.fail("%s: type tag %#x, want %#x", name, r.b[0], tag)
		return
	}
	if r.b[1] != formatV1 {
		r.fail("%s: unknown format version %d", name, r.b[1])
		return
	}
	r.b = r.b[2:]
}

// uvarint rejects non-minimal encodings: otherwise two byte strings would
// decode to the same value and the encoding would not be canonical.
func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad or truncated varint")
		return 0
	}
	if n != uvarintLen(v) {
		r.fail("non-minimal varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// length reads a count of items each at least minSize bytes long and refuses
// counts the remaining input cannot hold, so callers may preallocate from it.
func (r *reader) length(minSize int) int {
	v := r.uvarint()
	if r.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if v > uint64(len(r.b)/minSize) {
		r.fail("length %d exceeds remaining input", v)
		return 0
	}
	return int(v)
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail("truncated")
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) bool() bool {
	if r.err != nil {
		return false
	}
	if len(r.b) == 0 {
		r.fail("truncated")
		return false
	}
	c := r.b[0]
	r.b = r.b[1:]
	switch c {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail("bad boolean %d", c)
	return false
}

func readKey[K Key[K]](r *reader) K {
	var k K
	if r.err != nil {
		return k
	}
	k, rest, err := k.DecodeKey(r.b)
	if err != nil {
		r.err = err
		return k
	}
	r.b = rest
	return k
}

// end reports the sticky error, or an error if input is left over: trailing
// bytes would make two encodings of one value.
func (r *reader) end(name string) error {
	if r.err != nil {
		return fmt.Errorf("%s: %w", name, r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%s: %d trailing bytes: %w", name, len(r.b), core.ErrInvalidArgument)
	}
	return nil
}

// readSortedKeys reads count, then strictly increasing keys.
func readSortedKeys[K Key[K]](r *reader, what string) []K {
	n := r.length(1)
	keys := make([]K, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		k := readKey[K](r)
		if r.err == nil && i > 0 && keys[i-1].Compare(k) >= 0 {
			r.fail("%s keys not strictly increasing", what)
		}
		keys = append(keys, k)
	}
	return keys
}
