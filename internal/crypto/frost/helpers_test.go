package frost

import (
	"bytes"
	"errors"
	"io"
	mrand "math/rand/v2"
)

// testRand is a deterministic randomness source, so failures reproduce.
func testRand(seed uint64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return mrand.NewChaCha8(s)
}

// must unwraps a (value, error) result; Go does not allow passing a
// multi-value call next to a *testing.T, so an unexpected error panics, which
// fails the test with a stack trace just as well.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func dealerKeys(t tb, rng io.Reader, minSigners, maxSigners int) ([]*KeyPackage, *PublicKeyPackage) {
	t.Helper()
	shares, pub, err := TrustedDealerKeygen(rng, minSigners, maxSigners)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]*KeyPackage, len(shares))
	for i, s := range shares {
		if keys[i], err = s.Verify(); err != nil {
			t.Fatal(err)
		}
	}
	return keys, pub
}

// runDKG runs a whole session in memory, routing messages as a ceremony
// would, and checks that every participant outputs the same public package.
func runDKG(t tb, rng io.Reader, minSigners, maxSigners int) ([]*KeyPackage, *PublicKeyPackage) {
	t.Helper()
	parts := make([]*DKGParticipant, maxSigners)
	for i := range parts {
		parts[i] = must(NewDKG(rng, Identifier(i+1), minSigners, maxSigners))
	}
	return runSession(t, parts)
}

func runSession(t tb, parts []*DKGParticipant) ([]*KeyPackage, *PublicKeyPackage) {
	t.Helper()
	r1 := make([]*Round1Package, len(parts))
	for i, p := range parts {
		r1[i] = must(p.Round1())
	}
	inbox := make(map[Identifier][]*Round2Package)
	for i, p := range parts {
		for _, m := range must(p.Round2(without(r1, i))) {
			inbox[m.Receiver()] = append(inbox[m.Receiver()], m)
		}
	}
	keys := make([]*KeyPackage, len(parts))
	var pub *PublicKeyPackage
	var pubEnc []byte
	for i, p := range parts {
		k, pp, err := p.Finish(inbox[p.Identifier()])
		if err != nil {
			t.Fatal(err)
		}
		enc := must(pp.MarshalBinary())
		if pub == nil {
			pub, pubEnc = pp, enc
		} else if !bytes.Equal(enc, pubEnc) {
			t.Fatalf("participant %d disagrees on the public key package", p.Identifier())
		}
		keys[i] = k
	}
	return keys, pub
}

func without[T any](s []T, i int) []T {
	out := make([]T, 0, len(s)-1)
	out = append(out, s[:i]...)
	return append(out, s[i+1:]...)
}

// signWith runs both rounds for the given signers and aggregates. tamper, if
// non-nil, may modify shares before aggregation.
func signWith(t tb, rng io.Reader, signers []*KeyPackage, pub *PublicKeyPackage, msg []byte, tamper func([]*SignatureShare)) (*Signature, error) {
	t.Helper()
	nonces := make([]*SigningNonces, len(signers))
	comms := make([]*SigningCommitment, len(signers))
	for i, k := range signers {
		nonces[i] = must(Commit(rng, k))
		comms[i] = nonces[i].Commitment()
	}
	pkg, err := NewSigningPackage(comms, msg)
	if err != nil {
		return nil, err
	}
	shares := make([]*SignatureShare, len(signers))
	for i, k := range signers {
		if shares[i], err = Sign(k, nonces[i], pkg); err != nil {
			return nil, err
		}
	}
	if tamper != nil {
		tamper(shares)
	}
	return Aggregate(pub, pkg, shares)
}

// subsets calls f with every k-subset of 0…n-1.
func subsets(n, k int, f func([]int)) {
	idx := make([]int, 0, k)
	var rec func(start int)
	rec = func(start int) {
		if len(idx) == k {
			f(append([]int(nil), idx...))
			return
		}
		for i := start; i < n; i++ {
			idx = append(idx, i)
			rec(i + 1)
			idx = idx[:len(idx)-1]
		}
	}
	rec(0)
}

func pick[T any](s []T, idx []int) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = s[j]
	}
	return out
}

func wantErr(t tb, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// tb is the part of testing.TB that *rapid.T also has, so helpers serve both.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}
