// Package frost implements FROST(ristretto255, SHA-512), the two-round
// threshold Schnorr signature scheme of RFC 9591, together with the key
// generation it leaves out of scope: a trusted dealer with Feldman VSS
// commitments, a Pedersen/Feldman distributed key generation with proofs of
// knowledge (as in the FROST paper), and proactive share refresh.
//
// Signatures are plain Schnorr signatures over ristretto255, R || z, 64 bytes,
// with the RFC 9591 challenge H2(R || PK || msg). Verify therefore does not
// know or care how the key was shared: a 1-of-1 key produced by the same key
// generation verifies with the same code.
//
// Protocol flow, for a key shared t-of-n:
//
//	keygen:   TrustedDealerKeygen, or NewDKG → Round1 → Round2 → Finish on each participant
//	round 1:  each signer calls Commit(rand, key) and keeps the *SigningNonces private
//	          and in memory; it sends the SigningCommitment to the coordinator
//	round 2:  the coordinator builds NewSigningPackage(commitments, msg); each signer
//	          calls Sign(key, nonces, pkg), which consumes the nonces
//	finish:   the coordinator calls Aggregate(pubKeys, pkg, shares); any share that
//	          does not verify is reported as a *MisbehaviorError naming its signer
//
// Security-relevant properties of this implementation:
//
//   - Nonces follow RFC 9591 §4.1: 32 fresh random bytes hashed together with
//     the secret share, so a broken random source alone does not reveal the key.
//   - SigningNonces can be used once. Sign marks them used before it looks at
//     its input and zeroes them when it returns, whether it succeeds or not;
//     a second use fails with ErrNonceReused. They have no encoding, so they
//     cannot be written to disk by accident.
//   - Hashing to scalars uses SHA-512 and a constant-time reduction mod L
//     (go-ristretto's SetReduced); secret scalars only go through constant-time
//     group operations. Public values (identifiers, Lagrange coefficients,
//     binding factors) may use variable-time code.
//   - Every decoder is strict: exact lengths, canonical scalars (< L),
//     canonical non-identity group elements, identifiers in ascending order
//     without duplicates. Decoders return errors and never panic.
//
// Errors are sentinel values (ErrInvalidEncoding, ErrNonceReused, …) to be
// tested with errors.Is; faults that can be blamed on a participant are
// reported as *MisbehaviorError, found with errors.As or Culprits.
//
// The package keeps no global mutable state. Randomness is always an explicit
// io.Reader argument; nil means crypto/rand.
package frost
