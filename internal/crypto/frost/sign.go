package frost

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sync/atomic"

	"github.com/cloudflare/circl/group"
)

// SigningCommitment is a signer's public round-one output: the commitments
// to its hiding and binding nonces (RFC 9591 §5.1).
type SigningCommitment struct {
	id      Identifier
	hiding  group.Element
	binding group.Element
	// enc caches the canonical encoding: every signer and the coordinator
	// hash the whole commitment list, and encoding an element costs about as
	// much as 20 group additions.
	enc [commitmentSize]byte
}

func newSigningCommitment(id Identifier, hiding, binding group.Element) SigningCommitment {
	c := SigningCommitment{id: id, hiding: hiding, binding: binding}
	out := appendU16(c.enc[:0], uint16(id))
	out = encodeElement(out, hiding)
	encodeElement(out, binding)
	return c
}

func (c *SigningCommitment) hidingEnc() []byte  { return c.enc[identSize : identSize+elementSize] }
func (c *SigningCommitment) bindingEnc() []byte { return c.enc[identSize+elementSize:] }

const commitmentSize = identSize + 2*elementSize

// Identifier returns the signer.
func (c *SigningCommitment) Identifier() Identifier { return c.id }

func (c *SigningCommitment) equal(o *SigningCommitment) bool {
	return c.enc == o.enc
}

func (c *SigningCommitment) appendTo(dst []byte) []byte { return append(dst, c.enc[:]...) }

// MarshalBinary encodes id(u16) ‖ hiding ‖ binding, 66 bytes.
func (c *SigningCommitment) MarshalBinary() ([]byte, error) {
	if c.hiding == nil || c.binding == nil {
		return nil, errUninitialized
	}
	return c.appendTo(make([]byte, 0, commitmentSize)), nil
}

// UnmarshalBinary decodes the MarshalBinary form. Identity commitments are
// rejected, as RFC 9591's DeserializeElement does: an identity binding
// commitment would take the binding factor out of the signer's nonce.
func (c *SigningCommitment) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	v := readCommitment(&r)
	if err := r.done(); err != nil {
		return fmt.Errorf("signing commitment: %w", err)
	}
	*c = v
	return nil
}

func readCommitment(r *reader) SigningCommitment {
	start := r.b
	c := SigningCommitment{id: r.id(), hiding: r.element(), binding: r.element()}
	if r.err == nil {
		copy(c.enc[:], start)
	}
	return c
}

// SigningNonces are a signer's secret round-one output. They are deliberately
// not serializable and single use: Sign consumes and zeroes them, and a second
// Sign with the same value returns ErrNonceReused. Reusing a nonce pair with a
// different signing package reveals the secret share, so this type must never
// be copied (go vet's copylocks check flags copies) or persisted; if a session
// is abandoned call Destroy.
type SigningNonces struct {
	used       atomic.Bool
	hiding     group.Scalar
	binding    group.Scalar
	commitment SigningCommitment
}

// Commitment returns the public commitment to send to the coordinator.
func (n *SigningNonces) Commitment() *SigningCommitment {
	c := n.commitment
	return &c
}

// Destroy zeroes the nonces and marks them used.
func (n *SigningNonces) Destroy() {
	n.used.Store(true)
	zeroScalar(n.hiding)
	zeroScalar(n.binding)
}

// Commit runs RFC 9591 round one (§5.1) for key: it draws two nonces, each
// H3(32 fresh random bytes ‖ secret share), so that a weak random source on
// its own cannot leak the key. rand is read for 32 bytes for the hiding nonce,
// then 32 for the binding nonce; nil means crypto/rand.
func Commit(rand io.Reader, key *KeyPackage) (*SigningNonces, error) {
	if !key.valid() {
		return nil, fmt.Errorf("%w: nil key package", ErrKeyMismatch)
	}
	hiding, err := nonceGenerate(rand, key.secret)
	if err != nil {
		return nil, err
	}
	binding, err := nonceGenerate(rand, key.secret)
	if err != nil {
		zeroScalar(hiding)
		return nil, err
	}
	return &SigningNonces{
		hiding:     hiding,
		binding:    binding,
		commitment: newSigningCommitment(key.id, g.NewElement().MulGen(hiding), g.NewElement().MulGen(binding)),
	}, nil
}

func nonceGenerate(rand io.Reader, secret group.Scalar) (group.Scalar, error) {
	var rnd [32]byte
	if _, err := io.ReadFull(randReader(rand), rnd[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRandomness, err)
	}
	sk := encodeScalar(make([]byte, 0, scalarSize), secret)
	s := h3(rnd[:], sk)
	clear(sk)
	clear(rnd[:])
	return s, nil
}

// SigningPackage is what the coordinator sends every signer in round two:
// the commitments of the chosen signers, sorted by identifier, and the
// message.
type SigningPackage struct {
	commitments []SigningCommitment // strictly ascending identifiers
	message     []byte
}

// NewSigningPackage sorts the commitments by identifier (the order is hashed,
// so it must be canonical) and rejects duplicates.
func NewSigningPackage(commitments []*SigningCommitment, message []byte) (*SigningPackage, error) {
	if len(commitments) == 0 || len(commitments) > maxParticipants {
		return nil, fmt.Errorf("%w: %d commitments", ErrTooFewSigners, len(commitments))
	}
	cs := make([]SigningCommitment, len(commitments))
	for i, c := range commitments {
		if c == nil || c.hiding == nil || c.binding == nil {
			return nil, fmt.Errorf("%w: nil commitment", ErrInvalidMessage)
		}
		if err := c.id.check(); err != nil {
			return nil, err
		}
		cs[i] = *c
	}
	slices.SortFunc(cs, func(a, b SigningCommitment) int { return int(a.id) - int(b.id) })
	for i := 1; i < len(cs); i++ {
		if cs[i].id == cs[i-1].id {
			return nil, fmt.Errorf("%w: %d", ErrDuplicateIdentifier, cs[i].id)
		}
	}
	return &SigningPackage{commitments: cs, message: slices.Clone(message)}, nil
}

// Message returns the message to be signed.
func (p *SigningPackage) Message() []byte { return slices.Clone(p.message) }

// Signers returns the identifiers of the chosen signers in ascending order.
func (p *SigningPackage) Signers() []Identifier {
	ids := make([]Identifier, len(p.commitments))
	for i := range p.commitments {
		ids[i] = p.commitments[i].id
	}
	return ids
}

// MarshalBinary encodes count(u16) ‖ commitment* ‖ len(u32) ‖ message.
func (p *SigningPackage) MarshalBinary() ([]byte, error) {
	if len(p.commitments) == 0 {
		return nil, errUninitialized
	}
	out := make([]byte, 0, 2+len(p.commitments)*commitmentSize+4+len(p.message))
	out = appendU16(out, uint16(len(p.commitments)))
	for i := range p.commitments {
		out = p.commitments[i].appendTo(out)
	}
	out = appendU32(out, uint32(len(p.message)))
	return append(out, p.message...), nil
}

// UnmarshalBinary decodes the MarshalBinary form; the commitment list must be
// non-empty and strictly ascending (reordered or duplicated lists are
// rejected, never silently fixed, since a signer and the coordinator must
// hash the same list).
func (p *SigningPackage) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	n := int(r.u16())
	if r.err == nil && n == 0 {
		r.fail("empty commitment list")
	}
	if r.err == nil && len(r.b) < n*commitmentSize {
		r.fail("truncated commitment list")
	}
	cs := make([]SigningCommitment, 0, max(n, 0))
	for i := 0; i < n && r.err == nil; i++ {
		c := readCommitment(&r)
		if r.err == nil && i > 0 && c.id <= cs[i-1].id {
			r.err = fmt.Errorf("%w: %w", ErrInvalidEncoding, orderErr(c.id, cs[i-1].id))
		}
		cs = append(cs, c)
	}
	m := r.u32()
	if r.err == nil && uint64(m) != uint64(len(r.b)) {
		r.fail("message length %d, %d bytes left", m, len(r.b))
	}
	msg := r.take(len(r.b))
	if err := r.done(); err != nil {
		return fmt.Errorf("signing package: %w", err)
	}
	*p = SigningPackage{commitments: cs, message: slices.Clone(msg)}
	return nil
}

func (p *SigningPackage) find(id Identifier) int {
	i, ok := slices.BinarySearchFunc(p.commitments, id, func(c SigningCommitment, id Identifier) int {
		return int(c.id) - int(id)
	})
	if !ok {
		return -1
	}
	return i
}

// SignatureShare is a signer's round-two output.
type SignatureShare struct {
	id Identifier
	z  group.Scalar
}

const signatureShareSize = identSize + scalarSize

// Identifier returns the signer.
func (s *SignatureShare) Identifier() Identifier { return s.id }

// MarshalBinary encodes id(u16) ‖ z, 34 bytes.
func (s *SignatureShare) MarshalBinary() ([]byte, error) {
	if s.z == nil {
		return nil, errUninitialized
	}
	out := appendU16(make([]byte, 0, signatureShareSize), uint16(s.id))
	return encodeScalar(out, s.z), nil
}

// UnmarshalBinary decodes the MarshalBinary form; z must be canonical.
func (s *SignatureShare) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	id := r.id()
	z := r.scalar()
	if err := r.done(); err != nil {
		return fmt.Errorf("signature share: %w", err)
	}
	*s = SignatureShare{id: id, z: z}
	return nil
}

// signingContext holds the values RFC 9591 derives from a signing package
// that every signer and the coordinator compute identically.
type signingContext struct {
	pkg            *SigningPackage
	bindingFactors []group.Scalar // ρᵢ, parallel to pkg.commitments
	groupCommit    group.Element  // R
	challenge      group.Scalar   // c = H2(R ‖ PK ‖ msg)
}

// encodeCommitmentList is RFC 9591 §4.3 encode_group_commitment_list.
func encodeCommitmentList(cs []SigningCommitment) []byte {
	out := make([]byte, 0, len(cs)*(scalarSize+2*elementSize))
	for i := range cs {
		idb := cs[i].id.scalarBytes()
		out = append(out, idb[:]...)
		out = append(out, cs[i].hidingEnc()...)
		out = append(out, cs[i].bindingEnc()...)
	}
	return out
}

// bindingFactorInputs returns the RFC 9591 §4.4 rho_input of each signer:
// PK ‖ H4(msg) ‖ H5(commitment list) ‖ SerializeScalar(id).
func bindingFactorInputs(pk *PublicKey, pkg *SigningPackage) [][]byte {
	msgHash := h4(pkg.message)
	comHash := h5(encodeCommitmentList(pkg.commitments))
	prefix := make([]byte, 0, elementSize+128)
	prefix = append(prefix, pk.enc[:]...)
	prefix = append(prefix, msgHash[:]...)
	prefix = append(prefix, comHash[:]...)
	out := make([][]byte, len(pkg.commitments))
	for i := range pkg.commitments {
		idb := pkg.commitments[i].id.scalarBytes()
		out[i] = append(slices.Clip(prefix), idb[:]...)
	}
	return out
}

func newSigningContext(pk *PublicKey, pkg *SigningPackage) (*signingContext, error) {
	inputs := bindingFactorInputs(pk, pkg)
	ctx := &signingContext{
		pkg:            pkg,
		bindingFactors: make([]group.Scalar, len(inputs)),
	}
	bindings := make([]group.Element, len(inputs))
	for i, in := range inputs {
		ctx.bindingFactors[i] = h1(in)
		bindings[i] = pkg.commitments[i].binding
	}
	// Binding factors and commitments are public, so R = Σ Dᵢ + ρᵢ·Eᵢ can
	// use a variable-time multi-scalar multiplication; the per-signer terms
	// are only needed when blaming a signer, and computed then.
	ctx.groupCommit = publicMultiScalarMult(ctx.bindingFactors, bindings)
	for i := range pkg.commitments {
		ctx.groupCommit.Add(ctx.groupCommit, pkg.commitments[i].hiding)
	}
	// SerializeElement fails on the identity in RFC 9591; a group commitment
	// of 0 can only come from commitments chosen to cancel out.
	if ctx.groupCommit.IsIdentity() {
		return nil, fmt.Errorf("%w: group commitment", ErrIdentityElement)
	}
	ctx.challenge = challenge(elementBytes(ctx.groupCommit), pk, pkg.message)
	return ctx, nil
}

// challenge is RFC 9591 §4.6 compute_challenge.
func challenge(rEnc []byte, pk *PublicKey, msg []byte) group.Scalar {
	return h2(rEnc, pk.enc[:], msg)
}

// lagrange is RFC 9591 §4.2 derive_interpolating_value for the signer at
// index i of the package.
func lagrange(cs []SigningCommitment, i int) group.Scalar {
	ids := make([]Identifier, len(cs))
	for j := range cs {
		ids[j] = cs[j].id
	}
	return lagrangeAt(ids, i, 0)
}

// lagrangeAt returns the Lagrange basis polynomial of ids[i] over ids,
// evaluated at x: Π_{j≠i} (x − x_j) / (x_i − x_j). Identifiers are public, so
// it is computed on integers with a variable-time inversion, ~15× cheaper
// than the constant-time scalar inversion.
func lagrangeAt(ids []Identifier, i int, x int64) group.Scalar {
	xi := int64(ids[i])
	num, den := big.NewInt(1), big.NewInt(1)
	var t big.Int
	for j, id := range ids {
		if j == i {
			continue
		}
		xj := int64(id)
		num.Mul(num, t.SetInt64(x-xj))
		den.Mul(den, t.SetInt64(xi-xj))
	}
	den.Mod(den, groupOrder)
	if den.ModInverse(den, groupOrder) == nil {
		// Only reachable with duplicate identifiers, which every
		// constructor and decoder rejects.
		panic("frost: duplicate identifiers in Lagrange coefficient")
	}
	num.Mul(num, den)
	num.Mod(num, groupOrder)
	return g.NewScalar().SetBigInt(num)
}

// Sign runs RFC 9591 round two (§5.2) for key, consuming nonces. The nonces
// are marked used before anything else and zeroed on return, even on error,
// so a signer never answers two different packages with one nonce pair; after
// any failure the signer needs a fresh Commit.
//
// Sign checks that pkg carries exactly this signer's commitment, has at least
// t signers and a non-identity group commitment.
func Sign(key *KeyPackage, nonces *SigningNonces, pkg *SigningPackage) (*SignatureShare, error) {
	if nonces == nil {
		return nil, fmt.Errorf("%w: nil nonces", ErrMissingCommitment)
	}
	if !nonces.used.CompareAndSwap(false, true) {
		return nil, ErrNonceReused
	}
	defer nonces.Destroy()
	if nonces.hiding == nil || nonces.binding == nil {
		return nil, fmt.Errorf("%w: nonces not made by Commit", ErrMissingCommitment)
	}
	if !key.valid() || pkg == nil {
		return nil, fmt.Errorf("%w: nil or uninitialized key or signing package", ErrInvalidMessage)
	}
	if nonces.commitment.id != key.id {
		return nil, fmt.Errorf("%w: nonces of participant %d used with key of %d", ErrKeyMismatch, nonces.commitment.id, key.id)
	}
	if len(pkg.commitments) < int(key.minSigners) {
		return nil, fmt.Errorf("%w: %d of %d", ErrTooFewSigners, len(pkg.commitments), key.minSigners)
	}
	i := pkg.find(key.id)
	if i < 0 || !pkg.commitments[i].equal(&nonces.commitment) {
		return nil, fmt.Errorf("%w: participant %d", ErrMissingCommitment, key.id)
	}
	ctx, err := newSigningContext(key.groupKey, pkg)
	if err != nil {
		return nil, err
	}
	// z = d + e·ρ + λ·s·c, with the secret terms on the constant-time scalar
	// arithmetic of go-ristretto.
	lc := lagrange(pkg.commitments, i)
	lc.Mul(lc, ctx.challenge)
	z := g.NewScalar().Mul(lc, key.secret)
	t := g.NewScalar().Mul(nonces.binding, ctx.bindingFactors[i])
	z.Add(z, t)
	z.Add(z, nonces.hiding)
	zeroScalar(t)
	return &SignatureShare{id: key.id, z: z}, nil
}

// verifyShare is RFC 9591 §5.4 verify_signature_share for index i.
func (ctx *signingContext) verifyShare(i int, share *SignatureShare, verifying group.Element) bool {
	lc := lagrange(ctx.pkg.commitments, i)
	lc.Mul(lc, ctx.challenge)
	c := &ctx.pkg.commitments[i]
	rhs := publicMultiScalarMult([]group.Scalar{lc, ctx.bindingFactors[i]}, []group.Element{verifying, c.binding})
	rhs.Add(rhs, c.hiding)
	return g.NewElement().MulGen(share.z).IsEqual(rhs)
}

// matchShares pairs shares with the package's commitments by identifier and
// checks every signer is part of the key.
func matchShares(pub *PublicKeyPackage, pkg *SigningPackage, shares []*SignatureShare) ([]*SignatureShare, error) {
	if len(pkg.commitments) < int(pub.minSigners) {
		return nil, fmt.Errorf("%w: %d of %d", ErrTooFewSigners, len(pkg.commitments), pub.minSigners)
	}
	for i := range pkg.commitments {
		if _, ok := pub.shares[pkg.commitments[i].id]; !ok {
			return nil, fmt.Errorf("%w: %d", ErrUnknownParticipant, pkg.commitments[i].id)
		}
	}
	byIndex := make([]*SignatureShare, len(pkg.commitments))
	for _, s := range shares {
		if s == nil || s.z == nil {
			return nil, fmt.Errorf("%w: nil signature share", ErrInvalidMessage)
		}
		i := pkg.find(s.id)
		if i < 0 {
			return nil, fmt.Errorf("%w: share from %d, who is not in the signing package", ErrInvalidMessage, s.id)
		}
		if byIndex[i] != nil {
			return nil, fmt.Errorf("%w: %d", ErrDuplicateIdentifier, s.id)
		}
		byIndex[i] = s
	}
	for i, s := range byIndex {
		if s == nil {
			return nil, fmt.Errorf("%w: no signature share from %d", ErrInvalidMessage, pkg.commitments[i].id)
		}
	}
	return byIndex, nil
}

// VerifySignatureShare checks one signature share against the sender's
// verifying share (RFC 9591 §5.4). A bad share is reported as a
// *MisbehaviorError naming the sender and wrapping ErrInvalidSignatureShare.
func VerifySignatureShare(pub *PublicKeyPackage, pkg *SigningPackage, share *SignatureShare) error {
	if pub == nil || pub.groupKey == nil || pkg == nil {
		return fmt.Errorf("%w: nil public key package or signing package", ErrInvalidMessage)
	}
	if share == nil || share.z == nil {
		return fmt.Errorf("%w: nil signature share", ErrInvalidMessage)
	}
	i := pkg.find(share.id)
	if i < 0 {
		return fmt.Errorf("%w: share from %d, who is not in the signing package", ErrInvalidMessage, share.id)
	}
	verifying, ok := pub.shares[share.id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownParticipant, share.id)
	}
	ctx, err := newSigningContext(pub.groupKey, pkg)
	if err != nil {
		return err
	}
	if !ctx.verifyShare(i, share, verifying) {
		return &MisbehaviorError{Participant: share.id, Err: ErrInvalidSignatureShare}
	}
	return nil
}

// Aggregate combines one signature share per signer of pkg into a Schnorr
// signature (RFC 9591 §5.3) and verifies it. Only if the signature does not
// verify are the shares checked one by one; then every signer whose share is
// bad is reported as a *MisbehaviorError (joined; see Culprits), so the
// coordinator can exclude them and retry with others.
func Aggregate(pub *PublicKeyPackage, pkg *SigningPackage, shares []*SignatureShare) (*Signature, error) {
	if pub == nil || pub.groupKey == nil || pkg == nil {
		return nil, fmt.Errorf("%w: nil public key package or signing package", ErrInvalidMessage)
	}
	ordered, err := matchShares(pub, pkg, shares)
	if err != nil {
		return nil, err
	}
	ctx, err := newSigningContext(pub.groupKey, pkg)
	if err != nil {
		return nil, err
	}
	z := g.NewScalar()
	for _, s := range ordered {
		z.Add(z, s.z)
	}
	sig := newSignature(ctx.groupCommit, z)
	if pub.groupKey.Verify(pkg.message, sig) == nil {
		return sig, nil
	}
	var errs []error
	for i, s := range ordered {
		if !ctx.verifyShare(i, s, pub.shares[s.id]) {
			errs = append(errs, &MisbehaviorError{Participant: s.id, Err: ErrInvalidSignatureShare})
		}
	}
	if len(errs) == 0 {
		// Every share verified yet their sum did not: impossible unless the
		// key package itself is inconsistent.
		return nil, fmt.Errorf("%w: aggregate of valid shares: %w", ErrInvalidSignature, ErrKeyMismatch)
	}
	return nil, fmt.Errorf("aggregate: %w", joinErrs(errs))
}

func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// Signature is a Schnorr signature (R, z) over ristretto255.
type Signature struct {
	r   group.Element
	z   group.Scalar
	enc [signatureSize]byte
}

func newSignature(r group.Element, z group.Scalar) *Signature {
	s := &Signature{r: r, z: z}
	out := encodeElement(s.enc[:0], r)
	encodeScalar(out, z)
	return s
}

// ParseSignature decodes R ‖ z (64 bytes): R a canonical non-identity element,
// z a canonical scalar.
func ParseSignature(b []byte) (*Signature, error) {
	var s Signature
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return &s, nil
}

// Bytes returns R ‖ z.
func (s *Signature) Bytes() []byte { return slices.Clone(s.enc[:]) }

// MarshalBinary returns R ‖ z.
func (s *Signature) MarshalBinary() ([]byte, error) {
	if s.r == nil || s.z == nil {
		return nil, errUninitialized
	}
	return s.Bytes(), nil
}

// UnmarshalBinary is ParseSignature in place.
func (s *Signature) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	R := r.element()
	z := r.scalar()
	if err := r.done(); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	*s = Signature{r: R, z: z}
	copy(s.enc[:], b)
	return nil
}

// Verify checks a Schnorr signature: z·G == R + c·PK with
// c = H2(R ‖ PK ‖ msg). It is the same check for threshold and single keys.
func (pk *PublicKey) Verify(msg []byte, sig *Signature) error {
	if sig == nil || sig.r == nil || sig.z == nil || pk == nil || pk.e == nil {
		return fmt.Errorf("%w: nil or uninitialized signature or key", ErrInvalidSignature)
	}
	c := challenge(sig.enc[:elementSize], pk, msg)
	rhs := g.NewElement().Mul(pk.e, c)
	rhs.Add(rhs, sig.r)
	if !g.NewElement().MulGen(sig.z).IsEqual(rhs) {
		return ErrInvalidSignature
	}
	return nil
}

// Verify decodes a public key and a signature and verifies the signature on
// msg; any decoding failure is reported too (ErrInvalidEncoding).
func Verify(publicKey, msg, signature []byte) error {
	pk, err := ParsePublicKey(publicKey)
	if err != nil {
		return err
	}
	sig, err := ParseSignature(signature)
	if err != nil {
		return err
	}
	return pk.Verify(msg, sig)
}
