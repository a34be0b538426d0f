package ceremony

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aura-p2p/aura/internal/core"
)

// CodePrefix starts every invitation code; the digit is the code's version.
const CodePrefix = "aura-invite1-"

// Limits of an invitation code, so that it stays one pasteable line.
const (
	MaxCodeAddrs    = 8
	maxAddrLen      = 256
	MaxMessageBytes = 280
	codeVersion     = 1
	maxCodeLen      = 4096
)

const (
	tagCode       core.Tag = "aura/invitation/code/v1"
	tagDeviceCode core.Tag = "aura/invitation/device-code/v1"
)

// DeviceCodePrefix starts every device invitation code (the enrollment of a
// device into an account, internal/account).
const DeviceCodePrefix = "aura-device1-"

// CodeKind tells the codes of different ceremonies apart: each kind has its
// own prefix and its own signature tag, so a contact code pasted where a
// device code is expected is refused as one, and no code's signature can be
// taken for another kind's.
type CodeKind struct {
	prefix string
	tag    core.Tag
}

// ContactCode is the kind of contact invitation codes.
func ContactCode() CodeKind { return CodeKind{prefix: CodePrefix, tag: tagCode} }

// DeviceCode is the kind of device invitation codes.
func DeviceCode() CodeKind { return CodeKind{prefix: DeviceCodePrefix, tag: tagDeviceCode} }

// Errors a code is refused with. Each says what is wrong with the code the
// person pasted, not what the decoder tripped on.
var (
	ErrCodeMalformed = fmt.Errorf("not an invitation code (damaged or cut short when copied?): %w", core.ErrInvalidArgument)
	ErrCodeForged    = fmt.Errorf("invitation code's signature does not match its inviter (altered after it was made): %w", core.ErrInvalidArgument)
	ErrCodeExpired   = fmt.Errorf("invitation has expired: %w", core.ErrFailedPrecondition)
)

// Invitation is what an invitation code carries: who invites, where to reach
// them, and the one-time secret whose knowledge proves the code was received.
// The inviter signs it, so nobody on the way can redirect it to other
// addresses or extend it.
type Invitation struct {
	ID          [16]byte
	Inviter     core.DeviceID
	Authority   core.AuthorityID
	InviterHPKE [32]byte
	Secret      [32]byte
	Expires     time.Time // whole seconds
	Addrs       []string
	Message     string
	Signature   [ed25519.SignatureSize]byte
}

func (iv *Invitation) check() error {
	if len(iv.Addrs) > MaxCodeAddrs {
		return fmt.Errorf("%d addresses, at most %d: %w", len(iv.Addrs), MaxCodeAddrs, core.ErrInvalidArgument)
	}
	for _, a := range iv.Addrs {
		if a == "" || len(a) > maxAddrLen {
			return fmt.Errorf("address of %d bytes, want 1..%d: %w", len(a), maxAddrLen, core.ErrInvalidArgument)
		}
	}
	if len(iv.Message) > MaxMessageBytes || !utf8.ValidString(iv.Message) {
		return fmt.Errorf("message must be UTF-8 of at most %d bytes: %w", MaxMessageBytes, core.ErrInvalidArgument)
	}
	return nil
}

// signed is the encoding the signature covers: everything but the signature.
func (iv *Invitation) signed() []byte {
	w := &writer{}
	w.byte(codeVersion)
	w.fixed(iv.ID[:])
	w.fixed(iv.Inviter[:])
	w.fixed(iv.Authority[:])
	w.fixed(iv.InviterHPKE[:])
	w.fixed(iv.Secret[:])
	w.u64(uint64(iv.Expires.Unix()))
	w.byte(byte(len(iv.Addrs)))
	for _, a := range iv.Addrs {
		w.string16(a)
	}
	w.string16(iv.Message)
	return w.b
}

func (iv *Invitation) digest(k CodeKind) []byte {
	h := core.TaggedHash(k.tag, iv.signed())
	return h[:]
}

// Sign signs the invitation, as a contact invitation, with the inviter's
// device key.
func (iv *Invitation) Sign(key ed25519.PrivateKey) error { return iv.SignAs(ContactCode(), key) }

// SignAs signs the invitation as a code of kind k.
func (iv *Invitation) SignAs(k CodeKind, key ed25519.PrivateKey) error {
	if err := iv.check(); err != nil {
		return err
	}
	copy(iv.Signature[:], ed25519.Sign(key, iv.digest(k)))
	return nil
}

// Code is the contact invitation as one line of text.
func (iv *Invitation) Code() string { return iv.CodeAs(ContactCode()) }

// CodeAs is the invitation as one line of text of kind k (signed with SignAs
// of the same kind).
func (iv *Invitation) CodeAs(k CodeKind) string {
	b := append(iv.signed(), iv.Signature[:]...)
	return k.prefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseCode decodes a contact code and checks its signature; it does not
// check expiry (see Expired), so that a late code is refused by name.
func ParseCode(code string) (*Invitation, error) { return ParseCodeAs(ContactCode(), code) }

// ParseCodeAs decodes a code of kind k and checks its signature.
func ParseCodeAs(k CodeKind, code string) (*Invitation, error) {
	code = strings.TrimSpace(code)
	if !strings.HasPrefix(code, k.prefix) || len(code) > maxCodeLen {
		return nil, fmt.Errorf("want a code starting %q: %w", k.prefix, ErrCodeMalformed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(code[len(k.prefix):])
	if err != nil {
		return nil, ErrCodeMalformed
	}
	iv, err := decodeInvitation(raw)
	if err != nil {
		return nil, fmt.Errorf("%w (%w)", ErrCodeMalformed, err)
	}
	if !ed25519.Verify(iv.Inviter.PublicKey(), iv.digest(k), iv.Signature[:]) {
		return nil, ErrCodeForged
	}
	return iv, nil
}

func decodeInvitation(raw []byte) (*Invitation, error) {
	r := &reader{b: raw, what: "invitation code"}
	iv := &Invitation{}
	if v := r.byte("version"); r.err == nil && v != codeVersion {
		return nil, fmt.Errorf("code version %d, this aurad reads %d: %w", v, codeVersion, core.ErrInvalidArgument)
	}
	r.fixed(iv.ID[:], "id")
	r.fixed(iv.Inviter[:], "inviter")
	r.fixed(iv.Authority[:], "authority")
	r.fixed(iv.InviterHPKE[:], "hpke key")
	r.fixed(iv.Secret[:], "secret")
	exp := r.u64("expiry")
	if exp > 1<<40 {
		r.fail("expiry out of range")
	}
	iv.Expires = time.Unix(int64(exp), 0).UTC()
	n := int(r.byte("address count"))
	if n > MaxCodeAddrs {
		r.fail("%d addresses, at most %d", n, MaxCodeAddrs)
	}
	for i := 0; i < n && r.err == nil; i++ {
		iv.Addrs = append(iv.Addrs, string(r.bytes16("address", maxAddrLen)))
	}
	iv.Message = string(r.bytes16("message", MaxMessageBytes))
	r.fixed(iv.Signature[:], "signature")
	if err := r.done(); err != nil {
		return nil, err
	}
	if err := iv.check(); err != nil {
		return nil, err
	}
	return iv, nil
}

// Expired reports whether the invitation is past its expiry at now.
func (iv *Invitation) Expired(now time.Time) bool { return !now.Before(iv.Expires) }

// isCodeError reports whether err is one of the code's own refusals.
func isCodeError(err error) bool {
	return errors.Is(err, ErrCodeMalformed) || errors.Is(err, ErrCodeForged) || errors.Is(err, ErrCodeExpired)
}
