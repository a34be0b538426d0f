package frost

import (
	"testing"

	"github.com/cloudflare/circl/group"
)

// schnorrSign is textbook single-key Schnorr over ristretto255 with the
// RFC 9591 challenge, written without any of the package's signing code so
// the shared verifier is tested against an independent signer.
func schnorrSign(t tb, sk group.Scalar, pk *PublicKey, msg []byte) []byte {
	t.Helper()
	k, err := randomScalar(nil)
	if err != nil {
		t.Fatal(err)
	}
	R := group.Ristretto255.NewElement().MulGen(k)
	rEnc, _ := R.MarshalBinary()
	c := hashToScalar("chal", rEnc, pk.Bytes(), msg)
	z := group.Ristretto255.NewScalar().Mul(c, sk)
	z.Add(z, k)
	zEnc, _ := z.MarshalBinary()
	return append(rEnc, zEnc...)
}

// schnorrVerifyPlain is the textbook verification on raw circl calls: decode
// R and z, c = H2(R ‖ PK ‖ m), check z·G == R + c·PK. It is the baseline the
// benchmarks compare Verify with.
func schnorrVerifyPlain(pk group.Element, pkEnc, msg, sig []byte) bool {
	R := group.Ristretto255.NewElement()
	if R.UnmarshalBinary(sig[:32]) != nil {
		return false
	}
	z := group.Ristretto255.NewScalar()
	if z.UnmarshalBinary(sig[32:]) != nil {
		return false
	}
	c := hashToScalar("chal", sig[:32], pkEnc, msg)
	rhs := group.Ristretto255.NewElement().Mul(pk, c)
	rhs.Add(rhs, R)
	return group.Ristretto255.NewElement().MulGen(z).IsEqual(rhs)
}

func TestPlainSchnorrBaselineAgrees(t *testing.T) {
	rng := testRand(60)
	keys, pub := dealerKeys(t, rng, 2, 3)
	msg := []byte("baseline")
	sig := must(signWith(t, rng, keys[:2], pub, msg, nil))
	if !schnorrVerifyPlain(pub.PublicKey().e, pub.PublicKey().Bytes(), msg, sig.Bytes()) {
		t.Fatal("baseline rejects a FROST signature")
	}
	if schnorrVerifyPlain(pub.PublicKey().e, pub.PublicKey().Bytes(), []byte("other"), sig.Bytes()) {
		t.Fatal("baseline accepts a wrong message")
	}
}
