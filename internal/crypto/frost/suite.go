package frost

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"math/bits"

	r255 "github.com/bwesterb/go-ristretto"
	"github.com/cloudflare/circl/group"
)

// contextString is the RFC 9591 §6.2 ciphersuite context; it domain-separates
// every hash of this package from any other protocol using SHA-512.
const contextString = "FROST-RISTRETTO255-SHA512-v1"

const (
	scalarSize    = 32
	elementSize   = 32
	identSize     = 2 // wire size of an Identifier; see Identifier
	signatureSize = elementSize + scalarSize
)

// g is the only group this package speaks. It is a stateless value, so keeping
// it in a package-level variable adds no mutable state.
var g = group.Ristretto255

// Identifier names a participant. RFC 9591 identifiers are non-zero scalars;
// this package restricts them to 1…65535 so they can be sorted and sent as two
// bytes. Inside hashes they are serialized as RFC scalars (32 bytes,
// little-endian), which keeps the test vectors and interoperability intact.
type Identifier uint16

func (id Identifier) scalar() group.Scalar { return g.NewScalar().SetUint64(uint64(id)) }

func (id Identifier) scalarBytes() [scalarSize]byte {
	var b [scalarSize]byte
	binary.LittleEndian.PutUint16(b[:], uint16(id))
	return b
}

func (id Identifier) check() error {
	if id == 0 {
		return ErrInvalidIdentifier
	}
	return nil
}

// hashToScalar is the RFC 9591 ristretto255 H1/H2/H3 construction:
// SHA-512(contextString || tag || m...) read as a little-endian integer and
// reduced mod L. go-ristretto's SetReduced is constant time, unlike a big.Int
// reduction, which matters because H3 hashes the secret share.
func hashToScalar(tag string, parts ...[]byte) group.Scalar {
	h := sha512.New()
	h.Write([]byte(contextString))
	h.Write([]byte(tag))
	for _, p := range parts {
		h.Write(p)
	}
	var digest [64]byte
	h.Sum(digest[:0])
	var s r255.Scalar
	s.SetReduced(&digest)
	var buf [scalarSize]byte
	s.BytesInto(&buf)
	out := g.NewScalar()
	// A reduced value is always canonical, so this cannot fail.
	if err := out.UnmarshalBinary(buf[:]); err != nil {
		panic("frost: reduced scalar rejected: " + err.Error())
	}
	clear(digest[:])
	clear(buf[:])
	s.SetZero()
	return out
}

// hashToBytes is H4/H5: the raw 64-byte digest, used on public data only.
func hashToBytes(tag string, m []byte) [64]byte {
	h := sha512.New()
	h.Write([]byte(contextString))
	h.Write([]byte(tag))
	h.Write(m)
	var digest [64]byte
	h.Sum(digest[:0])
	return digest
}

func h1(m ...[]byte) group.Scalar { return hashToScalar("rho", m...) }
func h2(m ...[]byte) group.Scalar { return hashToScalar("chal", m...) }
func h3(m ...[]byte) group.Scalar { return hashToScalar("nonce", m...) }
func h4(m []byte) [64]byte        { return hashToBytes("msg", m) }
func h5(m []byte) [64]byte        { return hashToBytes("com", m) }

// hdkg is the DKG proof-of-knowledge challenge hash. It is not part of RFC
// 9591; the "dkg" tag follows the ZF FROST implementation so transcripts stay
// separated from signing challenges.
func hdkg(m ...[]byte) group.Scalar { return hashToScalar("dkg", m...) }

func randReader(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// randomScalar draws 64 bytes and reduces them, so the bias is about 2^-259.
// circl's RandomScalar ignores its reader for ristretto255; this function uses
// the caller's, which keeps key generation testable with a deterministic source.
func randomScalar(r io.Reader) (group.Scalar, error) {
	var buf [64]byte
	defer clear(buf[:])
	// A zero result has probability 2^-252 per draw; seeing it repeatedly
	// means the source is broken (e.g. all zeros), not unlucky.
	for range 8 {
		if _, err := io.ReadFull(randReader(r), buf[:]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRandomness, err)
		}
		var s r255.Scalar
		s.SetReduced(&buf)
		if s.IsNonZeroI() == 1 {
			var b [scalarSize]byte
			s.BytesInto(&b)
			out := g.NewScalar()
			err := out.UnmarshalBinary(b[:])
			clear(b[:])
			s.SetZero()
			if err != nil {
				panic("frost: reduced scalar rejected: " + err.Error())
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("%w: source returns only zero scalars", ErrRandomness)
}

func zeroScalar(s group.Scalar) {
	if s != nil {
		s.SetUint64(0)
	}
}

func newScalarFrom(s group.Scalar) group.Scalar { return g.NewScalar().Set(s) }

func encodeScalar(dst []byte, s group.Scalar) []byte {
	b, err := s.MarshalBinary()
	if err != nil || len(b) != scalarSize {
		panic("frost: scalar encoding failed")
	}
	dst = append(dst, b...)
	clear(b)
	return dst
}

// encodeElement appends the canonical encoding. Callers guarantee e is not the
// identity (decoders and constructors reject it).
func encodeElement(dst []byte, e group.Element) []byte {
	b, err := e.MarshalBinaryCompress()
	if err != nil || len(b) != elementSize {
		panic("frost: element encoding failed")
	}
	return append(dst, b...)
}

func elementBytes(e group.Element) []byte { return encodeElement(make([]byte, 0, elementSize), e) }

func decodeScalar(b []byte) (group.Scalar, error) {
	if len(b) != scalarSize {
		return nil, fmt.Errorf("%w: scalar length %d", ErrInvalidEncoding, len(b))
	}
	s := g.NewScalar()
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEncoding, ErrNonCanonicalScalar)
	}
	return s, nil
}

func decodeElement(b []byte) (group.Element, error) {
	if len(b) != elementSize {
		return nil, fmt.Errorf("%w: element length %d", ErrInvalidEncoding, len(b))
	}
	e := g.NewElement()
	if err := e.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: not a ristretto255 element", ErrInvalidEncoding)
	}
	if e.IsIdentity() {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEncoding, ErrIdentityElement)
	}
	return e, nil
}

// errUninitialized is returned by MarshalBinary on a zero value: its fields
// are unexported, so only the package's constructors and decoders can fill it.
var errUninitialized = fmt.Errorf("%w: uninitialized value", ErrInvalidEncoding)

// reader is a strict cursor over an encoding; the first failure sticks so
// decoders can read a whole structure and check the error once.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalidEncoding}, args...)...)
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("truncated input")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() byte {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *reader) id() Identifier {
	id := Identifier(r.u16())
	if r.err == nil && id == 0 {
		r.err = fmt.Errorf("%w: %w", ErrInvalidEncoding, ErrInvalidIdentifier)
	}
	return id
}

func (r *reader) scalar() group.Scalar {
	b := r.take(scalarSize)
	if b == nil {
		return nil
	}
	s, err := decodeScalar(b)
	if err != nil && r.err == nil {
		r.err = err
	}
	return s
}

func (r *reader) element() group.Element {
	b := r.take(elementSize)
	if b == nil {
		return nil
	}
	e, err := decodeElement(b)
	if err != nil && r.err == nil {
		r.err = err
	}
	return e
}

// done reports the sticky error, or trailing bytes, which would make two
// encodings decode to the same value.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

func appendU16(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }
func appendU32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

// mulSmall returns k·e for a public small integer k by double-and-add. It is
// variable time in k, which is fine for identifiers, and an order of magnitude
// cheaper than a full constant-time scalar multiplication.
func mulSmall(e group.Element, k uint64) group.Element {
	acc := g.Identity()
	for bit := bits.Len64(k) - 1; bit >= 0; bit-- {
		acc.Dbl(acc)
		if k>>uint(bit)&1 == 1 {
			acc.Add(acc, e)
		}
	}
	return acc
}

// groupOrder is L = 2^252 + 27742317777372353535851937790883648493.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// publicMultiScalarMult returns Σ sᵢ·Pᵢ by Straus' interleaved method with
// 4-bit windows: one shared chain of doublings instead of one per point. It
// branches on the scalars' bits, so it must only see public scalars.
func publicMultiScalarMult(scalars []group.Scalar, points []group.Element) group.Element {
	const windows = 2 * scalarSize // 4-bit digits
	tables := make([][16]group.Element, len(points))
	digits := make([][scalarSize]byte, len(points))
	for i, p := range points {
		tables[i][1] = p
		for k := 2; k < 16; k++ {
			tables[i][k] = g.NewElement().Add(tables[i][k-1], p)
		}
		b, err := scalars[i].MarshalBinary()
		if err != nil {
			panic("frost: scalar encoding failed")
		}
		copy(digits[i][:], b)
	}
	acc := g.Identity()
	for w := windows - 1; w >= 0; w-- {
		if w != windows-1 {
			acc.Dbl(acc)
			acc.Dbl(acc)
			acc.Dbl(acc)
			acc.Dbl(acc)
		}
		for i := range points {
			d := digits[i][w/2] >> (4 * uint(w%2)) & 0xf
			if d != 0 {
				acc.Add(acc, tables[i][d])
			}
		}
	}
	return acc
}
