package frost

import (
	"fmt"
	"io"
	"slices"

	"github.com/cloudflare/circl/group"
)

// Distributed key generation, after Komlo–Goldberg (FROST, SAC 2020, Figure 1):
// a Pedersen DKG in which every participant deals a Feldman-committed random
// polynomial and proves knowledge of its constant term with a Schnorr proof,
// which stops rogue-key attacks on the group key. RFC 9591 leaves key
// generation out of scope; the proof's challenge uses the suite's hash with
// the tag "dkg" over SerializeScalar(id) ‖ C₀ ‖ R, as ZF FROST does, followed
// by an optional session context.
//
// Proactive refresh runs the same three steps with polynomials whose constant
// term is zero: shares change, the group key does not, and a share stolen
// before the refresh cannot be combined with shares taken after it.
//
// Both are pure state machines: no I/O, no clocks, randomness from the reader
// given at construction. The caller (a ceremony) must
//   - deliver every Round1Package to every participant over an authenticated
//     broadcast in which all participants see the same messages,
//   - deliver each Round2Package only to its Receiver over an authenticated,
//     confidential channel,
//   - after Finish, confirm that all participants output the same
//     PublicKeyPackage (e.g. by comparing its encoding) before using the key.

type dkgState uint8

const (
	stateNew dkgState = iota
	stateRound1
	stateRound2
	stateDone
	stateFailed
)

// Round1Package is a participant's broadcast: its Feldman commitment and, in
// a DKG, its proof of knowledge of the committed secret.
type Round1Package struct {
	refresh    bool
	sender     Identifier
	commitment []group.Element // a DKG: C₀…C(t-1); a refresh: C₁…C(t-1)
	proofR     group.Element
	proofZ     group.Scalar
}

const (
	kindDKG     byte = 1
	kindRefresh byte = 2
)

// Sender returns the participant that produced the package.
func (p *Round1Package) Sender() Identifier { return p.sender }

// full returns the commitment to all coefficients, with the identity for the
// zero constant term of a refresh.
func (p *Round1Package) full() []group.Element {
	if p.refresh {
		return append([]group.Element{g.Identity()}, p.commitment...)
	}
	return p.commitment
}

// MarshalBinary encodes kind(1) ‖ sender(u16) ‖ count(u16) ‖ C* and, for a
// DKG, ‖ R ‖ z.
func (p *Round1Package) MarshalBinary() ([]byte, error) {
	if p.sender == 0 || (!p.refresh && (len(p.commitment) == 0 || p.proofR == nil || p.proofZ == nil)) {
		return nil, errUninitialized
	}
	kind := kindDKG
	if p.refresh {
		kind = kindRefresh
	}
	out := []byte{kind}
	out = appendU16(out, uint16(p.sender))
	out = appendElements(out, p.commitment)
	if !p.refresh {
		out = encodeElement(out, p.proofR)
		out = encodeScalar(out, p.proofZ)
	}
	return out, nil
}

// UnmarshalBinary decodes the MarshalBinary form. A DKG package needs at
// least one commitment; the threshold itself is checked by Round2.
func (p *Round1Package) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	kind := r.u8()
	if r.err == nil && kind != kindDKG && kind != kindRefresh {
		r.fail("unknown round-1 kind %d", kind)
	}
	v := Round1Package{refresh: kind == kindRefresh, sender: r.id()}
	minCoeffs := 1
	if v.refresh {
		minCoeffs = 0
	}
	v.commitment = readElements(&r, minCoeffs)
	if !v.refresh {
		v.proofR = r.element()
		v.proofZ = r.scalar()
	}
	if err := r.done(); err != nil {
		return fmt.Errorf("dkg round-1 package: %w", err)
	}
	*p = v
	return nil
}

// Round2Package carries the secret share f_sender(receiver). It must travel
// encrypted and authenticated, to the receiver only.
type Round2Package struct {
	sender, receiver Identifier
	share            group.Scalar
}

const round2Size = 2*identSize + scalarSize

// Sender returns the dealing participant.
func (p *Round2Package) Sender() Identifier { return p.sender }

// Receiver returns the participant the share is for.
func (p *Round2Package) Receiver() Identifier { return p.receiver }

// MarshalBinary encodes sender(u16) ‖ receiver(u16) ‖ share. The result is
// secret.
func (p *Round2Package) MarshalBinary() ([]byte, error) {
	if p.share == nil {
		return nil, errUninitialized
	}
	out := appendU16(make([]byte, 0, round2Size), uint16(p.sender))
	out = appendU16(out, uint16(p.receiver))
	return encodeScalar(out, p.share), nil
}

// UnmarshalBinary decodes the MarshalBinary form; sender and receiver must
// differ.
func (p *Round2Package) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	v := Round2Package{sender: r.id(), receiver: r.id(), share: r.scalar()}
	if r.err == nil && v.sender == v.receiver {
		r.fail("sender equals receiver %d", v.sender)
	}
	if err := r.done(); err != nil {
		return fmt.Errorf("dkg round-2 package: %w", err)
	}
	*p = v
	return nil
}

// DKGParticipant is one participant's state in a DKG or refresh session.
// It is not safe for concurrent use.
type DKGParticipant struct {
	state      dkgState
	rand       io.Reader
	id         Identifier
	minSigners int
	ids        []Identifier // all participants, ascending
	refresh    bool
	context    []byte
	oldKey     *KeyPackage
	oldPub     *PublicKeyPackage

	poly     polynomial
	own      *Round1Package
	received map[Identifier]*Round1Package
	ownShare group.Scalar
}

// NewDKG starts a t-of-n key generation for participant id among
// participants 1…n. rand supplies all randomness (nil: crypto/rand).
// It is NewDKGWithContext without a session context.
func NewDKG(rand io.Reader, id Identifier, minSigners, maxSigners int) (*DKGParticipant, error) {
	return NewDKGWithContext(rand, id, minSigners, maxSigners, nil)
}

// NewDKGWithContext is NewDKG with a session context (the FROST paper's Φ),
// e.g. a hash of the ceremony's identifier and participant list, which every
// participant must pass identically. It is bound into the proofs of
// knowledge, so a round-1 package cannot be replayed into another session.
// A nil context gives the ZF FROST proof format.
func NewDKGWithContext(rand io.Reader, id Identifier, minSigners, maxSigners int, context []byte) (*DKGParticipant, error) {
	if err := checkParams(minSigners, maxSigners); err != nil {
		return nil, err
	}
	if id == 0 || int(id) > maxSigners {
		return nil, fmt.Errorf("%w: %d not in 1…%d", ErrInvalidIdentifier, id, maxSigners)
	}
	ids := make([]Identifier, maxSigners)
	for i := range ids {
		ids[i] = Identifier(i + 1)
	}
	return &DKGParticipant{rand: rand, id: id, minSigners: minSigners, ids: ids, context: slices.Clone(context)}, nil
}

// NewRefresh starts a proactive refresh of key among all participants of
// pub. Every participant of pub must take part; the result has the same group
// key, threshold and identifiers, and fresh shares.
func NewRefresh(rand io.Reader, key *KeyPackage, pub *PublicKeyPackage) (*DKGParticipant, error) {
	if !key.valid() || pub == nil || pub.groupKey == nil {
		return nil, fmt.Errorf("%w: nil key or public key package", ErrKeyMismatch)
	}
	vs, ok := pub.shares[key.id]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownParticipant, key.id)
	}
	if !pub.groupKey.Equal(key.groupKey) || !vs.IsEqual(key.verifyingShare) || pub.minSigners != key.minSigners {
		return nil, fmt.Errorf("%w: key package does not belong to public key package", ErrKeyMismatch)
	}
	return &DKGParticipant{
		rand: rand, id: key.id, minSigners: int(key.minSigners), ids: slices.Clone(pub.ids),
		refresh: true, oldKey: key, oldPub: pub,
	}, nil
}

// Identifier returns the participant's identifier.
func (p *DKGParticipant) Identifier() Identifier { return p.id }

func (p *DKGParticipant) fail() {
	p.state = stateFailed
	p.poly.zero()
	zeroScalar(p.ownShare)
}

// Round1 draws the participant's polynomial and returns the package to
// broadcast to all other participants.
func (p *DKGParticipant) Round1() (*Round1Package, error) {
	if p.state != stateNew {
		return nil, fmt.Errorf("%w: round 1 already done", ErrWrongState)
	}
	var constant group.Scalar
	if p.refresh {
		constant = g.NewScalar()
	} else {
		var err error
		if constant, err = randomScalar(p.rand); err != nil {
			return nil, err
		}
	}
	poly, err := randomPolynomial(p.rand, constant, p.minSigners-1)
	if err != nil {
		zeroScalar(constant)
		return nil, err
	}
	commitment := poly.commit()
	pkg := &Round1Package{refresh: p.refresh, sender: p.id, commitment: commitment}
	if p.refresh {
		pkg.commitment = commitment[1:]
	} else {
		k, err := randomScalar(p.rand)
		if err != nil {
			poly.zero()
			return nil, err
		}
		pkg.proofR = g.NewElement().MulGen(k)
		c := dkgChallenge(p.id, commitment[0], pkg.proofR, p.context)
		pkg.proofZ = c.Mul(c, poly[0]).Add(c, k)
		zeroScalar(k)
	}
	p.poly, p.own, p.state = poly, pkg, stateRound1
	return pkg, nil
}

func dkgChallenge(id Identifier, c0, r group.Element, context []byte) group.Scalar {
	idb := id.scalarBytes()
	return hdkg(idb[:], elementBytes(c0), elementBytes(r), context)
}

// checkRound1 validates one received package and blames its sender.
func (p *DKGParticipant) checkRound1(pkg *Round1Package) error {
	want := p.minSigners
	if p.refresh {
		want--
	}
	switch {
	case pkg.refresh != p.refresh:
		return &MisbehaviorError{Participant: pkg.sender, Err: fmt.Errorf("%w: refresh/DKG package mismatch", ErrInvalidMessage)}
	case len(pkg.commitment) != want:
		return &MisbehaviorError{Participant: pkg.sender, Err: fmt.Errorf("%w: %d commitments, want %d", ErrInvalidMessage, len(pkg.commitment), want)}
	}
	for _, c := range pkg.commitment {
		if c == nil || c.IsIdentity() {
			return &MisbehaviorError{Participant: pkg.sender, Err: ErrIdentityElement}
		}
	}
	if p.refresh {
		return nil
	}
	if pkg.proofR == nil || pkg.proofZ == nil {
		return &MisbehaviorError{Participant: pkg.sender, Err: ErrInvalidProof}
	}
	// R ?= z·G − c·C₀
	c := dkgChallenge(pkg.sender, pkg.commitment[0], pkg.proofR, p.context)
	rhs := g.NewElement().Mul(pkg.commitment[0], c.Neg(c))
	rhs.Add(rhs, g.NewElement().MulGen(pkg.proofZ))
	if !rhs.IsEqual(pkg.proofR) {
		return &MisbehaviorError{Participant: pkg.sender, Err: ErrInvalidProof}
	}
	return nil
}

// others checks that senders are exactly the other participants, once each.
func (p *DKGParticipant) others(senders []Identifier) error {
	seen := make(map[Identifier]bool, len(senders))
	for _, s := range senders {
		switch {
		case s == p.id:
			return fmt.Errorf("%w: package from self (%d)", ErrInvalidMessage, s)
		case seen[s]:
			return fmt.Errorf("%w: %d", ErrDuplicateIdentifier, s)
		case !slices.Contains(p.ids, s):
			return fmt.Errorf("%w: %d", ErrUnknownParticipant, s)
		}
		seen[s] = true
	}
	if len(seen) != len(p.ids)-1 {
		for _, id := range p.ids {
			if id != p.id && !seen[id] {
				return fmt.Errorf("%w: no package from %d", ErrInvalidMessage, id)
			}
		}
	}
	return nil
}

// Round2 takes the round-1 packages of all other participants, verifies
// them, and returns one secret share per other participant. Packages that
// fail verification abort the session with a *MisbehaviorError for each
// sender at fault (see Culprits). A missing, duplicated or foreign package is
// reported without changing state, so the caller may retry with the right set.
func (p *DKGParticipant) Round2(received []*Round1Package) ([]*Round2Package, error) {
	if p.state != stateRound1 {
		return nil, fmt.Errorf("%w: round 2 needs round 1 and no round 2", ErrWrongState)
	}
	senders := make([]Identifier, len(received))
	for i, r := range received {
		if r == nil {
			return nil, fmt.Errorf("%w: nil package", ErrInvalidMessage)
		}
		senders[i] = r.sender
	}
	if err := p.others(senders); err != nil {
		return nil, err
	}
	var errs []error
	for _, r := range received {
		if err := p.checkRound1(r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		p.fail()
		return nil, fmt.Errorf("dkg round 2: %w", joinErrs(errs))
	}
	p.received = make(map[Identifier]*Round1Package, len(received))
	for _, r := range received {
		p.received[r.sender] = r
	}
	out := make([]*Round2Package, 0, len(received))
	for _, id := range p.ids {
		if id == p.id {
			continue
		}
		out = append(out, &Round2Package{sender: p.id, receiver: id, share: p.poly.evaluate(id)})
	}
	p.ownShare = p.poly.evaluate(p.id)
	p.poly.zero()
	p.poly = nil
	p.state = stateRound2
	return out, nil
}

// VerifyRound2Package checks a secret share against its sender's round-1
// commitment. Finish does this itself; the function exists so that any third
// party can settle a complaint once the accused reveals the disputed share:
// it returns a *MisbehaviorError naming the sender if the share is bad.
func VerifyRound2Package(sender *Round1Package, share *Round2Package) error {
	if sender == nil || share == nil || share.share == nil || sender.sender != share.sender {
		return fmt.Errorf("%w: package mismatch", ErrInvalidMessage)
	}
	if !g.NewElement().MulGen(share.share).IsEqual(evalCommitment(sender.full(), share.receiver)) {
		return &MisbehaviorError{Participant: share.sender, Err: ErrInvalidSecretShare}
	}
	return nil
}

// Finish takes the round-2 packages addressed to this participant, verifies
// every share against its sender's commitment and returns the participant's
// key and the public key package. Bad shares abort the session with a
// *MisbehaviorError per sender at fault; the secret state is zeroed either way.
func (p *DKGParticipant) Finish(received []*Round2Package) (*KeyPackage, *PublicKeyPackage, error) {
	if p.state != stateRound2 {
		return nil, nil, fmt.Errorf("%w: finish needs round 2", ErrWrongState)
	}
	senders := make([]Identifier, len(received))
	for i, r := range received {
		if r == nil || r.share == nil {
			return nil, nil, fmt.Errorf("%w: nil package", ErrInvalidMessage)
		}
		if r.receiver != p.id {
			return nil, nil, fmt.Errorf("%w: package for %d delivered to %d", ErrInvalidMessage, r.receiver, p.id)
		}
		senders[i] = r.sender
	}
	if err := p.others(senders); err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, r := range received {
		if err := VerifyRound2Package(p.received[r.sender], r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		p.fail()
		return nil, nil, fmt.Errorf("dkg finish: %w", joinErrs(errs))
	}

	secret := newScalarFrom(p.ownShare)
	for _, r := range received {
		secret.Add(secret, r.share)
	}
	if p.refresh {
		secret.Add(secret, p.oldKey.secret)
	}
	p.fail() // zero the per-session secrets; the state machine is spent
	p.state = stateDone

	// Σ over all participants of their commitments, coefficient by coefficient.
	summed := slices.Clone(p.own.full())
	for i := range summed {
		summed[i] = summed[i].Copy()
	}
	for _, r := range p.received {
		for i, c := range r.full() {
			summed[i].Add(summed[i], c)
		}
	}
	var groupKey group.Element
	if p.refresh {
		groupKey = p.oldPub.groupKey.e
	} else {
		groupKey = summed[0]
	}
	if groupKey.IsIdentity() {
		zeroScalar(secret)
		return nil, nil, fmt.Errorf("%w: group key", ErrIdentityElement)
	}
	shares := make(map[Identifier]group.Element, len(p.ids))
	for _, id := range p.ids {
		y := evalCommitment(summed, id)
		if p.refresh {
			y.Add(y, p.oldPub.shares[id])
		}
		if y.IsIdentity() {
			zeroScalar(secret)
			return nil, nil, fmt.Errorf("%w: verifying share of %d", ErrIdentityElement, id)
		}
		shares[id] = y
	}
	vs := g.NewElement().MulGen(secret)
	if !vs.IsEqual(shares[p.id]) {
		// Unreachable when every share verified; kept as a last line of defence.
		zeroScalar(secret)
		return nil, nil, fmt.Errorf("%w: own verifying share", ErrKeyMismatch)
	}
	pub := newPublicKeyPackage(p.minSigners, groupKey, shares)
	key := &KeyPackage{id: p.id, minSigners: uint16(p.minSigners), secret: secret, verifyingShare: vs, groupKey: pub.groupKey}
	return key, pub, nil
}
