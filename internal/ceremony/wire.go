package ceremony

import (
	"encoding/binary"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
)

// The ceremony's codes, messages and facts share one strict binary form:
// fixed-size fields as they are, variable ones behind a 2-byte length.
// Decoders refuse short input, over-long fields and trailing bytes, so that
// every accepted value has exactly one encoding.

type writer struct{ b []byte }

func (w *writer) byte(v byte)    { w.b = append(w.b, v) }
func (w *writer) fixed(v []byte) { w.b = append(w.b, v...) }
func (w *writer) u64(v uint64)   { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) bytes16(v []byte) {
	w.b = binary.BigEndian.AppendUint16(w.b, uint16(len(v)))
	w.b = append(w.b, v...)
}
func (w *writer) string16(v string) { w.bytes16([]byte(v)) }

type reader struct {
	b    []byte
	what string
	err  error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %s: %w", r.what, fmt.Sprintf(format, args...), core.ErrInvalidArgument)
	}
}

func (r *reader) take(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("truncated at %s", field)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte(field string) byte {
	v := r.take(1, field)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) fixed(dst []byte, field string) {
	if v := r.take(len(dst), field); v != nil {
		copy(dst, v)
	}
}

func (r *reader) u64(field string) uint64 {
	v := r.take(8, field)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (r *reader) bytes16(field string, max int) []byte {
	l := r.take(2, field)
	if l == nil {
		return nil
	}
	n := int(binary.BigEndian.Uint16(l))
	if n > max {
		r.fail("%s of %d bytes, at most %d", field, n, max)
		return nil
	}
	v := r.take(n, field)
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

// done reports the first error, or trailing bytes.
func (r *reader) done() error {
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}
