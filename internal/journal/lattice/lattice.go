package lattice

import (
	"bytes"
	"cmp"
	"fmt"
	"strings"

	"github.com/aura-p2p/aura/internal/core"
)

// Join is a join-semilattice: Join is associative, commutative and
// idempotent, and Bottom is its identity. Join returns a new value and leaves
// both operands untouched.
type Join[T any] interface {
	Join(other T) T
	Bottom() T
	Equal(other T) bool
}

// Meet is a meet-semilattice: Meet is associative, commutative and
// idempotent, and Top is its identity. Meet never widens: the result is below
// both operands.
type Meet[T any] interface {
	Meet(other T) T
	Top() T
	Equal(other T) bool
}

// Codec is the binary form of a lattice value. DecodeBinary ignores its
// receiver (call it on the zero value); it exists as a method so that generic
// containers such as ORMap can decode their nested values without a factory
// argument.
type Codec[T any] interface {
	AppendBinary(dst []byte) ([]byte, error)
	DecodeBinary(data []byte) (T, error)
}

// Nested is what an ORMap can hold as a value: a join-semilattice whose zero
// value is bottom and that can be encoded.
type Nested[T any] interface {
	Join[T]
	Codec[T]
}

// Key is an element, replica id or value that the lattices order and encode.
// Compare must be a total order consistent with ==, and AppendKey must be
// self-delimiting and canonical (equal keys give equal bytes), so that
// containers can sort and concatenate keys without a length prefix.
// DecodeKey ignores its receiver and returns the key and the rest of src.
//
// The package provides String, Uint64, Int64 and Device; any other comparable
// type can implement the interface.
type Key[K any] interface {
	comparable
	Compare(other K) int
	AppendKey(dst []byte) []byte
	DecodeKey(src []byte) (K, []byte, error)
}

// String is a Key holding arbitrary bytes (not necessarily UTF-8): element
// names, register values, map keys.
type String string

// Compare orders by bytes.
func (s String) Compare(o String) int { return strings.Compare(string(s), string(o)) }

// AppendKey appends the length-prefixed bytes.
func (s String) AppendKey(dst []byte) []byte {
	dst = appendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeKey reads a length-prefixed string.
func (String) DecodeKey(src []byte) (String, []byte, error) {
	r := reader{b: src}
	n := r.length(1)
	b := r.take(n)
	if r.err != nil {
		return "", nil, fmt.Errorf("string key: %w", r.err)
	}
	return String(b), r.b, nil
}

// Uint64 is a Key for unsigned integers (e.g. test replica ids, budget limits).
type Uint64 uint64

// Compare orders numerically.
func (u Uint64) Compare(o Uint64) int { return cmp.Compare(u, o) }

// AppendKey appends a minimal uvarint.
func (u Uint64) AppendKey(dst []byte) []byte { return appendUvarint(dst, uint64(u)) }

// DecodeKey reads a minimal uvarint.
func (Uint64) DecodeKey(src []byte) (Uint64, []byte, error) {
	r := reader{b: src}
	v := r.uvarint()
	if r.err != nil {
		return 0, nil, fmt.Errorf("uint64 key: %w", r.err)
	}
	return Uint64(v), r.b, nil
}

// Int64 is a Key for signed integers.
type Int64 int64

// Compare orders numerically.
func (i Int64) Compare(o Int64) int { return cmp.Compare(i, o) }

// AppendKey appends a zig-zag minimal uvarint, so small magnitudes stay short.
func (i Int64) AppendKey(dst []byte) []byte {
	return appendUvarint(dst, uint64(i<<1)^uint64(i>>63))
}

// DecodeKey reads a zig-zag minimal uvarint.
func (Int64) DecodeKey(src []byte) (Int64, []byte, error) {
	r := reader{b: src}
	u := r.uvarint()
	if r.err != nil {
		return 0, nil, fmt.Errorf("int64 key: %w", r.err)
	}
	return Int64(int64(u>>1) ^ -int64(u&1)), r.b, nil
}

// Device is a Key for core.DeviceID, the replica id the daemon uses. Convert
// with Device(id) and core.DeviceID(d); both are [32]byte.
type Device core.DeviceID

// Compare orders by bytes.
func (d Device) Compare(o Device) int { return bytes.Compare(d[:], o[:]) }

// AppendKey appends the 32 raw bytes.
func (d Device) AppendKey(dst []byte) []byte { return append(dst, d[:]...) }

// DecodeKey reads 32 raw bytes.
func (Device) DecodeKey(src []byte) (Device, []byte, error) {
	var d Device
	if len(src) < len(d) {
		return d, nil, fmt.Errorf("device key: truncated: %w", core.ErrInvalidArgument)
	}
	copy(d[:], src)
	return d, src[len(d):], nil
}

func (d Device) String() string { return core.DeviceID(d).String() }
