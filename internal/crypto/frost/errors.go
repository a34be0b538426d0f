package frost

import (
	"errors"
	"fmt"
	"slices"
)

// Sentinel errors. Functions wrap them with context using %w; callers branch
// with errors.Is.
var (
	// ErrInvalidEncoding reports a byte string that is not the canonical
	// encoding of the expected value (wrong length, scalar ≥ L, invalid or
	// identity element, bad ordering, trailing bytes, …).
	ErrInvalidEncoding = errors.New("frost: invalid encoding")
	// ErrNonCanonicalScalar reports a 32-byte scalar encoding whose value is ≥ L.
	ErrNonCanonicalScalar = errors.New("frost: non-canonical scalar")
	// ErrIdentityElement reports the identity element where it is not allowed:
	// RFC 9591 forbids serializing or accepting it.
	ErrIdentityElement = errors.New("frost: identity element")
	// ErrInvalidIdentifier reports identifier 0, which would reveal the
	// secret (f(0)) if a share were issued for it.
	ErrInvalidIdentifier = errors.New("frost: invalid participant identifier")
	// ErrDuplicateIdentifier reports the same participant twice in a list.
	ErrDuplicateIdentifier = errors.New("frost: duplicate participant identifier")
	// ErrUnsorted reports a list that is not in strictly ascending order of
	// identifiers; the RFC fixes the order because it is hashed.
	ErrUnsorted = errors.New("frost: list not sorted by identifier")
	// ErrInvalidParameters reports an unusable threshold configuration.
	ErrInvalidParameters = errors.New("frost: invalid threshold parameters")
	// ErrTooFewSigners reports a signing set smaller than the threshold.
	ErrTooFewSigners = errors.New("frost: fewer signers than the threshold")
	// ErrUnknownParticipant reports an identifier that is not part of the key.
	ErrUnknownParticipant = errors.New("frost: unknown participant")
	// ErrMissingCommitment reports a signing package that lacks the signer's
	// own commitment or carries a different one.
	ErrMissingCommitment = errors.New("frost: signer's commitment missing from signing package")
	// ErrNonceReused reports SigningNonces passed to Sign a second time.
	ErrNonceReused = errors.New("frost: signing nonces already used")
	// ErrInvalidSignatureShare reports a signature share that does not verify.
	ErrInvalidSignatureShare = errors.New("frost: invalid signature share")
	// ErrInvalidSignature reports a signature that does not verify.
	ErrInvalidSignature = errors.New("frost: invalid signature")
	// ErrInvalidSecretShare reports a secret share inconsistent with the
	// sender's Feldman VSS commitment.
	ErrInvalidSecretShare = errors.New("frost: secret share does not match commitment")
	// ErrInvalidProof reports a DKG proof of knowledge that does not verify.
	ErrInvalidProof = errors.New("frost: invalid proof of knowledge")
	// ErrInvalidMessage reports a protocol message that is well-formed but
	// does not fit the session (wrong recipient, length, kind, sender, …).
	ErrInvalidMessage = errors.New("frost: invalid protocol message")
	// ErrWrongState reports a DKG or refresh step called out of order.
	ErrWrongState = errors.New("frost: protocol step called in the wrong state")
	// ErrRandomness reports a failure of the random source.
	ErrRandomness = errors.New("frost: random source failed")
	// ErrKeyMismatch reports key material that does not belong together
	// (verifying share ≠ secret share·G, different group keys, …).
	ErrKeyMismatch = errors.New("frost: inconsistent key material")
)

// MisbehaviorError attributes a fault to one participant: a signature share
// that does not verify, a DKG proof of knowledge or secret share that does
// not check out. Err is one of the sentinels and is reachable with errors.Is.
type MisbehaviorError struct {
	Participant Identifier
	Err         error
}

func (e *MisbehaviorError) Error() string {
	return fmt.Sprintf("participant %d misbehaved: %v", e.Participant, e.Err)
}

func (e *MisbehaviorError) Unwrap() error { return e.Err }

// Culprits returns, in ascending order and without duplicates, every
// participant blamed by a *MisbehaviorError anywhere in err's tree. Aggregate
// and Finish report all culprits they find at once (joined with errors.Join),
// so a caller can exclude them all before retrying.
func Culprits(err error) []Identifier {
	var ids []Identifier
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if m, ok := e.(*MisbehaviorError); ok {
			ids = append(ids, m.Participant)
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	slices.Sort(ids)
	return slices.Compact(ids)
}
