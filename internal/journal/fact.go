package journal

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/crypto/edsig"
)

// Limits on what a fact may carry. They bound the work any peer can make us do.
const (
	MaxPayloadSize = 64 << 10
	MaxTypeIDLen   = 128
	// MaxSignedFactSize bounds the whole encoded SignedFact: payload plus the
	// largest possible header and signature.
	MaxSignedFactSize = MaxPayloadSize + 1024
)

// Field numbers of FactBody and SignedFact; they match
// api/proto/aura/journal/v1/journal.proto so clients in other languages can
// decode the bytes with generated code.
const (
	fieldNamespace     protowire.Number = 1
	fieldTypeID        protowire.Number = 2
	fieldSchemaVersion protowire.Number = 3
	fieldPayload       protowire.Number = 4
	fieldAuthor        protowire.Number = 5
	fieldLamport       protowire.Number = 6
	fieldCreatedAt     protowire.Number = 7

	fieldSignedBody      protowire.Number = 1
	fieldSignedSignature protowire.Number = 2
)

// Fact is the content of a fact body.
type Fact struct {
	Namespace     core.Namespace
	TypeID        string
	SchemaVersion uint32
	Payload       []byte
	Author        core.DeviceID
	Lamport       uint64
	CreatedAtMs   int64
}

// CreatedAt returns the author's claimed creation time. It is informational:
// nothing orders or decides by it.
func (f *Fact) CreatedAt() time.Time { return time.UnixMilli(f.CreatedAtMs) }

// SignedFact is a fact as stored and shipped: the verbatim body bytes, the
// signature over them, and their decoding.
type SignedFact struct {
	Fact
	ID        core.FactID
	Body      []byte
	Signature []byte
}

// FactKey orders facts for reduction: by lamport, then id.
type FactKey struct {
	Lamport uint64
	ID      core.FactID
}

// Key returns the fact's reduction-order key.
func (s *SignedFact) Key() FactKey { return FactKey{Lamport: s.Lamport, ID: s.ID} }

// Less orders keys by (lamport, id).
func (k FactKey) Less(o FactKey) bool {
	if k.Lamport != o.Lamport {
		return k.Lamport < o.Lamport
	}
	return string(k.ID[:]) < string(o.ID[:])
}

// ErrNonCanonical is wrapped by decode errors for bytes that decode but are not
// the one encoding EncodeBody would produce.
var ErrNonCanonical = errors.New("non-canonical encoding")

// CheckTypeID accepts type ids made of lowercase letters, digits and ". _ - /",
// e.g. "aura.chat.message/v1".
func CheckTypeID(t string) error {
	if t == "" {
		return fmt.Errorf("type id is empty: %w", core.ErrInvalidArgument)
	}
	if len(t) > MaxTypeIDLen {
		return fmt.Errorf("type id is %d bytes, limit %d: %w", len(t), MaxTypeIDLen, core.ErrInvalidArgument)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		ok := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/'
		if !ok {
			return fmt.Errorf("type id %q: byte %d (%q) is not one of a-z 0-9 . _ - /: %w", t, i, c, core.ErrInvalidArgument)
		}
	}
	return nil
}

// checkContent validates what a body may hold, independent of any state.
func (f *Fact) checkContent() error {
	if !f.Namespace.Valid() {
		return fmt.Errorf("namespace is not set: %w", core.ErrInvalidArgument)
	}
	if err := CheckTypeID(f.TypeID); err != nil {
		return err
	}
	if len(f.Payload) > MaxPayloadSize {
		return fmt.Errorf("payload is %d bytes, limit %d: %w", len(f.Payload), MaxPayloadSize, core.ErrInvalidArgument)
	}
	return nil
}

// EncodeBody returns the canonical encoding of f: FactBody fields in number
// order, zero values omitted, minimal varints.
func EncodeBody(f *Fact) ([]byte, error) {
	if err := f.checkContent(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(f.Payload)+len(f.TypeID)+160)
	b = protowire.AppendTag(b, fieldNamespace, protowire.BytesType)
	b = protowire.AppendString(b, f.Namespace.String())
	b = protowire.AppendTag(b, fieldTypeID, protowire.BytesType)
	b = protowire.AppendString(b, f.TypeID)
	if f.SchemaVersion != 0 {
		b = protowire.AppendTag(b, fieldSchemaVersion, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.SchemaVersion))
	}
	if len(f.Payload) != 0 {
		b = protowire.AppendTag(b, fieldPayload, protowire.BytesType)
		b = protowire.AppendBytes(b, f.Payload)
	}
	b = protowire.AppendTag(b, fieldAuthor, protowire.BytesType)
	b = protowire.AppendBytes(b, f.Author[:])
	if f.Lamport != 0 {
		b = protowire.AppendTag(b, fieldLamport, protowire.VarintType)
		b = protowire.AppendVarint(b, f.Lamport)
	}
	if f.CreatedAtMs != 0 {
		b = protowire.AppendTag(b, fieldCreatedAt, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.CreatedAtMs))
	}
	return b, nil
}

// DecodeBody parses body bytes, accepting only the canonical encoding.
func DecodeBody(b []byte) (Fact, error) {
	var f Fact
	var sawNamespace, sawType, sawAuthor bool
	r := fieldReader{b: b}
	for r.more() {
		num, typ, err := r.tag()
		if err != nil {
			return Fact{}, err
		}
		switch num {
		case fieldNamespace, fieldTypeID, fieldPayload, fieldAuthor:
			if typ != protowire.BytesType {
				return Fact{}, r.errf("field %d: wrong wire type %d", num, typ)
			}
			v, err := r.bytes()
			if err != nil {
				return Fact{}, err
			}
			switch num {
			case fieldNamespace:
				if !utf8.Valid(v) {
					return Fact{}, r.errf("namespace is not UTF-8")
				}
				ns, err := core.ParseNamespace(string(v))
				if err != nil {
					return Fact{}, err
				}
				if ns.String() != string(v) {
					return Fact{}, fmt.Errorf("namespace %q: %w", v, ErrNonCanonical)
				}
				f.Namespace, sawNamespace = ns, true
			case fieldTypeID:
				f.TypeID, sawType = string(v), true
			case fieldPayload:
				if len(v) == 0 {
					return Fact{}, fmt.Errorf("empty payload field present: %w", ErrNonCanonical)
				}
				f.Payload = v
			case fieldAuthor:
				if len(v) != len(f.Author) {
					return Fact{}, r.errf("author is %d bytes, want %d", len(v), len(f.Author))
				}
				copy(f.Author[:], v)
				sawAuthor = true
			}
		case fieldSchemaVersion, fieldLamport, fieldCreatedAt:
			if typ != protowire.VarintType {
				return Fact{}, r.errf("field %d: wrong wire type %d", num, typ)
			}
			v, err := r.varint()
			if err != nil {
				return Fact{}, err
			}
			if v == 0 {
				return Fact{}, fmt.Errorf("field %d holds a zero value: %w", num, ErrNonCanonical)
			}
			switch num {
			case fieldSchemaVersion:
				if v > 0xFFFFFFFF {
					return Fact{}, r.errf("schema_version %d overflows uint32", v)
				}
				f.SchemaVersion = uint32(v)
			case fieldLamport:
				f.Lamport = v
			case fieldCreatedAt:
				f.CreatedAtMs = int64(v)
			}
		default:
			return Fact{}, r.errf("unknown field %d", num)
		}
	}
	if !sawNamespace || !sawType || !sawAuthor {
		return Fact{}, fmt.Errorf("fact body lacks namespace, type_id or author: %w", core.ErrInvalidArgument)
	}
	if err := f.checkContent(); err != nil {
		return Fact{}, err
	}
	return f, nil
}

// FactIDOf returns the id of a body.
func FactIDOf(body []byte) core.FactID {
	return core.FactID(core.TaggedHash(core.TagFact, body))
}

// Signer signs fact bodies as one device.
type Signer interface {
	DeviceID() core.DeviceID
	Sign(msg []byte) []byte
}

// KeySigner signs with an Ed25519 private key held in memory.
type KeySigner struct {
	id  core.DeviceID
	key ed25519.PrivateKey
}

// NewKeySigner wraps key.
func NewKeySigner(key ed25519.PrivateKey) *KeySigner {
	var id core.DeviceID
	copy(id[:], key.Public().(ed25519.PublicKey))
	return &KeySigner{id: id, key: key}
}

func (s *KeySigner) DeviceID() core.DeviceID { return s.id }
func (s *KeySigner) Sign(msg []byte) []byte  { return ed25519.Sign(s.key, msg) }

// SignFact encodes f and signs it as signer, which must be f's author.
func SignFact(signer Signer, f Fact) (*SignedFact, error) {
	if f.Author != signer.DeviceID() {
		return nil, fmt.Errorf("author %s is not the signer %s: %w", f.Author, signer.DeviceID(), core.ErrInvalidArgument)
	}
	body, err := EncodeBody(&f)
	if err != nil {
		return nil, err
	}
	return &SignedFact{Fact: f, ID: FactIDOf(body), Body: body, Signature: signer.Sign(body)}, nil
}

// VerifySignature checks the author's signature over the body bytes, under
// the rule of package edsig: every path that admits a fact, one at a time or
// in a batch, must accept exactly the same signatures, or devices would
// disagree on the set.
func (s *SignedFact) VerifySignature() error {
	if !edsig.Verify(s.Author.PublicKey(), s.Body, s.Signature) {
		return fmt.Errorf("fact %s: bad signature by %s: %w", s.ID, s.Author, core.ErrInvalidArgument)
	}
	return nil
}

// Encode returns the SignedFact wire bytes.
func (s *SignedFact) Encode() []byte {
	b := make([]byte, 0, len(s.Body)+len(s.Signature)+8)
	b = protowire.AppendTag(b, fieldSignedBody, protowire.BytesType)
	b = protowire.AppendBytes(b, s.Body)
	b = protowire.AppendTag(b, fieldSignedSignature, protowire.BytesType)
	b = protowire.AppendBytes(b, s.Signature)
	return b
}

// DecodeSignedFact parses SignedFact bytes from disk or the network. It checks
// the encoding and the body, not the signature (VerifySignature does).
// The result aliases b.
func DecodeSignedFact(b []byte) (*SignedFact, error) {
	if len(b) > MaxSignedFactSize {
		return nil, fmt.Errorf("signed fact is %d bytes, limit %d: %w", len(b), MaxSignedFactSize, core.ErrInvalidArgument)
	}
	r := fieldReader{b: b}
	var body, sig []byte
	for r.more() {
		num, typ, err := r.tag()
		if err != nil {
			return nil, err
		}
		if typ != protowire.BytesType {
			return nil, r.errf("field %d: wrong wire type %d", num, typ)
		}
		v, err := r.bytes()
		if err != nil {
			return nil, err
		}
		switch num {
		case fieldSignedBody:
			body = v
		case fieldSignedSignature:
			sig = v
		default:
			return nil, r.errf("unknown field %d", num)
		}
	}
	if body == nil || sig == nil {
		return nil, fmt.Errorf("signed fact lacks body or signature: %w", core.ErrInvalidArgument)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("signature is %d bytes, want %d: %w", len(sig), ed25519.SignatureSize, core.ErrInvalidArgument)
	}
	f, err := DecodeBody(body)
	if err != nil {
		return nil, fmt.Errorf("fact body: %w", err)
	}
	return &SignedFact{Fact: f, ID: FactIDOf(body), Body: body, Signature: sig}, nil
}

// fieldReader walks protobuf fields, insisting on strictly increasing field
// numbers (so no duplicates and one order) and minimal varints.
type fieldReader struct {
	b    []byte
	off  int
	last protowire.Number
}

func (r *fieldReader) more() bool { return r.off < len(r.b) }

func (r *fieldReader) errf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s: %w", r.off, fmt.Sprintf(format, args...), core.ErrInvalidArgument)
}

func (r *fieldReader) tag() (protowire.Number, protowire.Type, error) {
	v, n := protowire.ConsumeVarint(r.b[r.off:])
	if n < 0 {
		return 0, 0, r.errf("truncated tag")
	}
	if n != protowire.SizeVarint(v) {
		return 0, 0, fmt.Errorf("overlong tag varint: %w", ErrNonCanonical)
	}
	num, typ := protowire.DecodeTag(v)
	if num <= r.last {
		return 0, 0, fmt.Errorf("field %d after field %d: %w", num, r.last, ErrNonCanonical)
	}
	r.last = num
	r.off += n
	return num, typ, nil
}

func (r *fieldReader) varint() (uint64, error) {
	v, n := protowire.ConsumeVarint(r.b[r.off:])
	if n < 0 {
		return 0, r.errf("truncated varint")
	}
	if n != protowire.SizeVarint(v) {
		return 0, fmt.Errorf("overlong varint: %w", ErrNonCanonical)
	}
	r.off += n
	return v, nil
}

func (r *fieldReader) bytes() ([]byte, error) {
	l, err := r.varint()
	if err != nil {
		return nil, err
	}
	if l > uint64(len(r.b)-r.off) {
		return nil, r.errf("length %d exceeds the %d bytes left", l, len(r.b)-r.off)
	}
	v := r.b[r.off : r.off+int(l) : r.off+int(l)]
	r.off += int(l)
	return v, nil
}
