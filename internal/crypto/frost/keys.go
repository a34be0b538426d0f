package frost

import (
	"crypto/subtle"
	"fmt"
	"io"
	"slices"

	"github.com/cloudflare/circl/group"
)

// maxParticipants bounds n by what an Identifier can name.
const maxParticipants = 1<<16 - 1

func checkParams(minSigners, maxSigners int) error {
	if minSigners < 1 || maxSigners < minSigners || maxSigners > maxParticipants {
		return fmt.Errorf("%w: %d-of-%d", ErrInvalidParameters, minSigners, maxSigners)
	}
	return nil
}

// PublicKey is a group (or single-signer) verification key: a non-identity
// ristretto255 element. Its encoding is cached because every binding factor
// and challenge hashes it.
type PublicKey struct {
	e   group.Element
	enc [elementSize]byte
}

func newPublicKey(e group.Element) *PublicKey {
	pk := &PublicKey{e: e.Copy()}
	copy(pk.enc[:], elementBytes(e))
	return pk
}

// ParsePublicKey decodes a 32-byte canonical ristretto255 encoding; the
// identity is rejected because it would verify any signature with R = z·G.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	e, err := decodeElement(b)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return newPublicKey(e), nil
}

// Bytes returns the 32-byte canonical encoding.
func (pk *PublicKey) Bytes() []byte { return slices.Clone(pk.enc[:]) }

// Equal reports whether both keys are the same element.
func (pk *PublicKey) Equal(other *PublicKey) bool {
	return other != nil && subtle.ConstantTimeCompare(pk.enc[:], other.enc[:]) == 1
}

// polynomial holds secret coefficients a0 + a1·x + … + a(t-1)·x^(t-1).
type polynomial []group.Scalar

func randomPolynomial(rand io.Reader, constant group.Scalar, degree int) (polynomial, error) {
	p := make(polynomial, degree+1)
	p[0] = constant
	for i := 1; i <= degree; i++ {
		s, err := randomScalar(rand)
		if err != nil {
			p.zero()
			return nil, err
		}
		p[i] = s
	}
	return p, nil
}

// evaluate computes p(id) by Horner's rule in constant time with respect to
// the coefficients (the identifier is public).
func (p polynomial) evaluate(id Identifier) group.Scalar {
	x := id.scalar()
	acc := newScalarFrom(p[len(p)-1])
	for i := len(p) - 2; i >= 0; i-- {
		acc.Mul(acc, x)
		acc.Add(acc, p[i])
	}
	return acc
}

// commit returns the Feldman commitments aᵢ·G.
func (p polynomial) commit() []group.Element {
	out := make([]group.Element, len(p))
	for i, a := range p {
		out[i] = g.NewElement().MulGen(a)
	}
	return out
}

func (p polynomial) zero() {
	for _, a := range p {
		zeroScalar(a)
	}
}

// evalCommitment returns Σ C_k·x^k (k from offset) for public x, the
// Feldman check value for the share of participant x.
func evalCommitment(coeffs []group.Element, x Identifier) group.Element {
	acc := g.Identity()
	for i := len(coeffs) - 1; i >= 0; i-- {
		acc = mulSmall(acc, uint64(x))
		acc.Add(acc, coeffs[i])
	}
	return acc
}

// VSSCommitment is a Feldman VSS commitment: the coefficients of the sharing
// polynomial times the generator. Its first element is the group public key
// and its length is the threshold.
type VSSCommitment struct {
	coeffs []group.Element
}

// Threshold returns the number of shares needed to sign.
func (c *VSSCommitment) Threshold() int { return len(c.coeffs) }

// PublicKey returns the committed group key, C₀, or nil for a zero value.
func (c *VSSCommitment) PublicKey() *PublicKey {
	if len(c.coeffs) == 0 {
		return nil
	}
	return newPublicKey(c.coeffs[0])
}

// VerifyingShare returns Σ C_k·id^k, the public key matching participant id's
// secret share.
func (c *VSSCommitment) VerifyingShare(id Identifier) ([]byte, error) {
	if err := id.check(); err != nil {
		return nil, err
	}
	if len(c.coeffs) == 0 {
		return nil, errUninitialized
	}
	e := evalCommitment(c.coeffs, id)
	if e.IsIdentity() {
		return nil, ErrIdentityElement
	}
	return elementBytes(e), nil
}

// MarshalBinary encodes count(u16) ‖ C₀ ‖ … ‖ C(t-1).
func (c *VSSCommitment) MarshalBinary() ([]byte, error) {
	if len(c.coeffs) == 0 {
		return nil, errUninitialized
	}
	return appendElements(nil, c.coeffs), nil
}

// UnmarshalBinary decodes the MarshalBinary form; it rejects an empty list,
// identity elements and trailing bytes.
func (c *VSSCommitment) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	coeffs := readElements(&r, 1)
	if err := r.done(); err != nil {
		return fmt.Errorf("vss commitment: %w", err)
	}
	c.coeffs = coeffs
	return nil
}

func appendElements(dst []byte, es []group.Element) []byte {
	dst = appendU16(dst, uint16(len(es)))
	for _, e := range es {
		dst = encodeElement(dst, e)
	}
	return dst
}

func readElements(r *reader, min int) []group.Element {
	n := int(r.u16())
	if r.err == nil && n < min {
		r.fail("%d elements, need at least %d", n, min)
	}
	if r.err != nil || len(r.b) < n*elementSize {
		r.fail("truncated element list")
		return nil
	}
	es := make([]group.Element, n)
	for i := range es {
		es[i] = r.element()
	}
	return es
}

// SecretShare is what a trusted dealer sends to one participant: its share
// f(id) and the dealer's commitment, which lets the participant verify the
// share before accepting it (Verify).
type SecretShare struct {
	id         Identifier
	value      group.Scalar
	commitment *VSSCommitment
}

// Identifier returns the recipient.
func (s *SecretShare) Identifier() Identifier { return s.id }

// Commitment returns the dealer's Feldman commitment.
func (s *SecretShare) Commitment() *VSSCommitment { return s.commitment }

// Verify checks the share against the dealer's commitment (RFC 9591 Appendix
// C.2 vss_verify) and turns it into the participant's KeyPackage. A dealer
// that sends an inconsistent share is caught here: ErrInvalidSecretShare.
func (s *SecretShare) Verify() (*KeyPackage, error) {
	if err := s.id.check(); err != nil {
		return nil, err
	}
	if s.value == nil || s.commitment == nil || len(s.commitment.coeffs) == 0 || len(s.commitment.coeffs) > maxParticipants {
		return nil, fmt.Errorf("%w: missing commitment", ErrInvalidSecretShare)
	}
	want := evalCommitment(s.commitment.coeffs, s.id)
	got := g.NewElement().MulGen(s.value)
	if !got.IsEqual(want) || got.IsIdentity() {
		return nil, fmt.Errorf("%w: participant %d", ErrInvalidSecretShare, s.id)
	}
	return &KeyPackage{
		id:             s.id,
		minSigners:     uint16(len(s.commitment.coeffs)),
		secret:         newScalarFrom(s.value),
		verifyingShare: got,
		groupKey:       newPublicKey(s.commitment.coeffs[0]),
	}, nil
}

// Destroy zeroes the secret value.
func (s *SecretShare) Destroy() { zeroScalar(s.value) }

// MarshalBinary encodes id(u16) ‖ f(id) ‖ commitment. The result contains
// secret material.
func (s *SecretShare) MarshalBinary() ([]byte, error) {
	if s.value == nil || s.commitment == nil || len(s.commitment.coeffs) == 0 {
		return nil, errUninitialized
	}
	out := appendU16(nil, uint16(s.id))
	out = encodeScalar(out, s.value)
	return appendElements(out, s.commitment.coeffs), nil
}

// UnmarshalBinary decodes the MarshalBinary form. It does not verify the
// share against the commitment; call Verify.
func (s *SecretShare) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	id := r.id()
	v := r.scalar()
	coeffs := readElements(&r, 1)
	if err := r.done(); err != nil {
		return fmt.Errorf("secret share: %w", err)
	}
	*s = SecretShare{id: id, value: v, commitment: &VSSCommitment{coeffs: coeffs}}
	return nil
}

// KeyPackage is one participant's long-lived signing key: its identifier, its
// secret share, the matching verifying share, the group key and the threshold.
type KeyPackage struct {
	id             Identifier
	minSigners     uint16
	secret         group.Scalar
	verifyingShare group.Element
	groupKey       *PublicKey
}

// Identifier returns the participant's identifier.
func (k *KeyPackage) Identifier() Identifier { return k.id }

// MinSigners returns the threshold t.
func (k *KeyPackage) MinSigners() int { return int(k.minSigners) }

// PublicKey returns the group key.
func (k *KeyPackage) PublicKey() *PublicKey { return k.groupKey }

// VerifyingShare returns the encoding of secret·G.
func (k *KeyPackage) VerifyingShare() []byte { return elementBytes(k.verifyingShare) }

func (k *KeyPackage) valid() bool {
	return k != nil && k.secret != nil && k.verifyingShare != nil && k.groupKey != nil && k.minSigners > 0
}

// Destroy zeroes the secret share; the package is unusable afterwards.
func (k *KeyPackage) Destroy() { zeroScalar(k.secret) }

// MarshalBinary encodes id(u16) ‖ t(u16) ‖ secret ‖ verifying share ‖
// group key. The result contains the secret share: store it encrypted.
func (k *KeyPackage) MarshalBinary() ([]byte, error) {
	if !k.valid() {
		return nil, errUninitialized
	}
	out := make([]byte, 0, 4+scalarSize+2*elementSize)
	out = appendU16(out, uint16(k.id))
	out = appendU16(out, k.minSigners)
	out = encodeScalar(out, k.secret)
	out = encodeElement(out, k.verifyingShare)
	return append(out, k.groupKey.enc[:]...), nil
}

// UnmarshalBinary decodes the MarshalBinary form and checks that the
// verifying share is secret·G, so a corrupted package fails here rather than
// producing invalid signature shares later.
func (k *KeyPackage) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	id := r.id()
	t := r.u16()
	sk := r.scalar()
	vs := r.element()
	gk := r.element()
	if err := r.done(); err != nil {
		return fmt.Errorf("key package: %w", err)
	}
	if t == 0 {
		return fmt.Errorf("key package: %w: threshold 0", ErrInvalidEncoding)
	}
	if !g.NewElement().MulGen(sk).IsEqual(vs) {
		zeroScalar(sk)
		return fmt.Errorf("key package: %w: verifying share does not match secret share", ErrKeyMismatch)
	}
	*k = KeyPackage{id: id, minSigners: t, secret: sk, verifyingShare: vs, groupKey: newPublicKey(gk)}
	return nil
}

// PublicKeyPackage is the public view of a shared key: the group key, the
// threshold and every participant's verifying share. Coordinators need it to
// check signature shares and blame their senders.
type PublicKeyPackage struct {
	minSigners uint16
	groupKey   *PublicKey
	ids        []Identifier // strictly ascending
	shares     map[Identifier]group.Element
}

func newPublicKeyPackage(minSigners int, groupKey group.Element, shares map[Identifier]group.Element) *PublicKeyPackage {
	p := &PublicKeyPackage{
		minSigners: uint16(minSigners),
		groupKey:   newPublicKey(groupKey),
		shares:     shares,
	}
	for id := range shares {
		p.ids = append(p.ids, id)
	}
	slices.Sort(p.ids)
	return p
}

// PublicKey returns the group key.
func (p *PublicKeyPackage) PublicKey() *PublicKey { return p.groupKey }

// MinSigners returns the threshold t.
func (p *PublicKeyPackage) MinSigners() int { return int(p.minSigners) }

// Identifiers returns the participants in ascending order.
func (p *PublicKeyPackage) Identifiers() []Identifier { return slices.Clone(p.ids) }

// VerifyingShare returns the encoding of participant id's verifying share.
func (p *PublicKeyPackage) VerifyingShare(id Identifier) ([]byte, error) {
	e, ok := p.shares[id]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownParticipant, id)
	}
	return elementBytes(e), nil
}

// MarshalBinary encodes t(u16) ‖ group key ‖ n(u16) ‖ (id(u16) ‖ share)*
// with identifiers strictly ascending.
func (p *PublicKeyPackage) MarshalBinary() ([]byte, error) {
	if p.groupKey == nil || p.minSigners == 0 {
		return nil, errUninitialized
	}
	out := make([]byte, 0, 4+elementSize+len(p.ids)*(identSize+elementSize))
	out = appendU16(out, p.minSigners)
	out = append(out, p.groupKey.enc[:]...)
	out = appendU16(out, uint16(len(p.ids)))
	for _, id := range p.ids {
		out = appendU16(out, uint16(id))
		out = encodeElement(out, p.shares[id])
	}
	return out, nil
}

// UnmarshalBinary decodes the MarshalBinary form; identifiers must be
// strictly ascending and there must be at least t of them.
func (p *PublicKeyPackage) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	t := r.u16()
	gk := r.element()
	n := int(r.u16())
	if r.err == nil && (t == 0 || n < int(t)) {
		r.fail("threshold %d with %d participants", t, n)
	}
	if r.err == nil && len(r.b) != n*(identSize+elementSize) {
		r.fail("length does not match %d participants", n)
	}
	shares := make(map[Identifier]group.Element, max(n, 0))
	var prev Identifier
	for i := 0; i < n && r.err == nil; i++ {
		id := r.id()
		if r.err == nil && id <= prev {
			r.err = fmt.Errorf("%w: %w", ErrInvalidEncoding, orderErr(id, prev))
		}
		prev = id
		shares[id] = r.element()
	}
	if err := r.done(); err != nil {
		return fmt.Errorf("public key package: %w", err)
	}
	v := newPublicKeyPackage(int(t), gk, shares)
	if err := v.check(); err != nil {
		return fmt.Errorf("public key package: %w", err)
	}
	*p = *v
	return nil
}

// check verifies that the verifying shares are points of one polynomial of
// degree t-1 whose value at 0 is the group key: interpolating the first t
// shares in the exponent must give the group key and every other share.
// Without it a corrupted package would make Aggregate blame honest signers.
// The cost is n-t+1 public multi-scalar multiplications of t points.
func (p *PublicKeyPackage) check() error {
	t := int(p.minSigners)
	base := p.ids[:t]
	points := make([]group.Element, t)
	for i, id := range base {
		points[i] = p.shares[id]
	}
	interpolate := func(x int64) group.Element {
		coeffs := make([]group.Scalar, t)
		for i := range base {
			coeffs[i] = lagrangeAt(base, i, x)
		}
		return publicMultiScalarMult(coeffs, points)
	}
	if !interpolate(0).IsEqual(p.groupKey.e) {
		return fmt.Errorf("%w: verifying shares do not interpolate to the group key", ErrKeyMismatch)
	}
	for _, id := range p.ids[t:] {
		if !interpolate(int64(id)).IsEqual(p.shares[id]) {
			return fmt.Errorf("%w: verifying share of %d is off the polynomial", ErrKeyMismatch, id)
		}
	}
	return nil
}

func orderErr(id, prev Identifier) error {
	if id == prev {
		return fmt.Errorf("%w: %d", ErrDuplicateIdentifier, id)
	}
	return fmt.Errorf("%w: %d after %d", ErrUnsorted, id, prev)
}

// TrustedDealerKeygen creates a fresh random group key and splits it t-of-n
// (identifiers 1…n) as in RFC 9591 Appendix C. Each SecretShare must reach its
// participant confidentially; the participant calls Verify on it. The dealer
// knows the group secret: use the DKG where no single party may.
func TrustedDealerKeygen(rand io.Reader, minSigners, maxSigners int) ([]*SecretShare, *PublicKeyPackage, error) {
	if err := checkParams(minSigners, maxSigners); err != nil {
		return nil, nil, err
	}
	secret, err := randomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	poly, err := randomPolynomial(rand, secret, minSigners-1)
	if err != nil {
		zeroScalar(secret)
		return nil, nil, err
	}
	defer poly.zero()
	shares, pub := deal(poly, maxSigners)
	return shares, pub, nil
}

// SplitSecret shares an existing secret key (32-byte canonical scalar,
// non-zero) t-of-n, e.g. to turn a single-device key into a threshold key
// without changing the public key.
func SplitSecret(rand io.Reader, secretKey []byte, minSigners, maxSigners int) ([]*SecretShare, *PublicKeyPackage, error) {
	if err := checkParams(minSigners, maxSigners); err != nil {
		return nil, nil, err
	}
	secret, err := decodeScalar(secretKey)
	if err != nil {
		return nil, nil, fmt.Errorf("secret key: %w", err)
	}
	if secret.IsZero() {
		return nil, nil, fmt.Errorf("secret key: %w: zero", ErrInvalidEncoding)
	}
	poly, err := randomPolynomial(rand, secret, minSigners-1)
	if err != nil {
		zeroScalar(secret)
		return nil, nil, err
	}
	defer poly.zero()
	shares, pub := deal(poly, maxSigners)
	return shares, pub, nil
}

// deal evaluates poly at 1…n; split out so the RFC vectors can fix the
// coefficients.
func deal(poly polynomial, maxSigners int) ([]*SecretShare, *PublicKeyPackage) {
	commitment := &VSSCommitment{coeffs: poly.commit()}
	shares := make([]*SecretShare, maxSigners)
	verifying := make(map[Identifier]group.Element, maxSigners)
	for i := range shares {
		id := Identifier(i + 1)
		v := poly.evaluate(id)
		shares[i] = &SecretShare{id: id, value: v, commitment: commitment}
		verifying[id] = g.NewElement().MulGen(v)
	}
	return shares, newPublicKeyPackage(len(poly), commitment.coeffs[0], verifying)
}
