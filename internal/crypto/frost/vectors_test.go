package frost

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// RFC 9591 Appendix E.2, FROST(ristretto255, SHA-512): 2-of-3, signers 1 and 3,
// message "test". Values typed from the RFC text (they match
// shared/reference/frost-vectors/frost-ristretto255-sha512.json).
var rfcVector = struct {
	groupSecretKey, groupPublicKey, message string
	coefficients                            []string
	shares                                  map[Identifier]string
	signers                                 []rfcSigner
	signature                               string
}{
	groupSecretKey: "1b25a55e463cfd15cf14a5d3acc3d15053f08da49c8afcf3ab265f2ebc4f970b",
	groupPublicKey: "e2a62f39eede11269e3bd5a7d97554f5ca384f9f6d3dd9c3c0d05083c7254f57",
	message:        "74657374",
	coefficients:   []string{"410f8b744b19325891d73736923525a4f596c805d060dfb9c98009d34e3fec02"},
	shares: map[Identifier]string{
		1: "5c3430d391552f6e60ecdc093ff9f6f4488756aa6cebdbad75a768010b8f830e",
		2: "b06fc5eac20b4f6e1b271d9df2343d843e1e1fb03c4cbb673f2872d459ce6f01",
		3: "f17e505f0e2581c6acfe54d3846a622834b5e7b50cad9a2109a97ba7a80d5c04",
	},
	signers: []rfcSigner{
		{
			id:                 1,
			hidingRandomness:   "f595a133b4d95c6e1f79887220c8b275ce6277e7f68a6640e1e7140f9be2fb5c",
			bindingRandomness:  "34dd1001360e3513cb37bebfabe7be4a32c5bb91ba19fbd4360d039111f0fbdc",
			hidingNonce:        "214f2cabb86ed71427ea7ad4283b0fae26b6746c801ce824b83ceb2b99278c03",
			bindingNonce:       "c9b8f5e16770d15603f744f8694c44e335e8faef00dad182b8d7a34a62552f0c",
			hidingCommitment:   "965def4d0958398391fc06d8c2d72932608b1e6255226de4fb8d972dac15fd57",
			bindingCommitment:  "ec5170920660820007ae9e1d363936659ef622f99879898db86e5bf1d5bf2a14",
			bindingFactorInput: "e2a62f39eede11269e3bd5a7d97554f5ca384f9f6d3dd9c3c0d05083c7254f572889dde2854e26377a16caf77dfee5f6be8fe5b4c80318da84698a4161021b033911db5ef8205362701bc9ecd983027814abee94f46d094943a2f4b79a6e4d4603e52c435d8344554942a0a472d8ad84320585b8da3ae5b9ce31cd1903f795c1af66de22af1a45f652cd05ee446b1b4091aaccc91e2471cd18a85a659cecd11f0100000000000000000000000000000000000000000000000000000000000000",
			bindingFactor:      "8967fd70fa06a58e5912603317fa94c77626395a695a0e4e4efc4476662eba0c",
			sigShare:           "9285f875923ce7e0c491a592e9ea1865ec1b823ead4854b48c8a46287749ee09",
		},
		{
			id:                 3,
			hidingRandomness:   "daa0cf42a32617786d390e0c7edfbf2efbd428037069357b5173ae61d6dd5d5e",
			bindingRandomness:  "b4387e72b2e4108ce4168931cc2c7fcce5f345a5297368952c18b5fc8473f050",
			hidingNonce:        "3f7927872b0f9051dd98dd73eb2b91494173bbe0feb65a3e7e58d3e2318fa40f",
			bindingNonce:       "ffd79445fb8030f0a3ddd3861aa4b42b618759282bfe24f1f9304c7009728305",
			hidingCommitment:   "480e06e3de182bf83489c45d7441879932fd7b434a26af41455756264fbd5d6e",
			bindingCommitment:  "3064746dfd3c1862ef58fc68c706da287dd925066865ceacc816b3a28c7b363b",
			bindingFactorInput: "e2a62f39eede11269e3bd5a7d97554f5ca384f9f6d3dd9c3c0d05083c7254f572889dde2854e26377a16caf77dfee5f6be8fe5b4c80318da84698a4161021b033911db5ef8205362701bc9ecd983027814abee94f46d094943a2f4b79a6e4d4603e52c435d8344554942a0a472d8ad84320585b8da3ae5b9ce31cd1903f795c1af66de22af1a45f652cd05ee446b1b4091aaccc91e2471cd18a85a659cecd11f0300000000000000000000000000000000000000000000000000000000000000",
			bindingFactor:      "f2c1bb7c33a10511158c2f1766a4a5fadf9f86f2a92692ed333128277cc31006",
			sigShare:           "7cb211fe0e3d59d25db6e36b3fb32344794139602a7b24f1ae0dc4e26ad7b908",
		},
	},
	signature: "fc45655fbc66bbffad654ea4ce5fdae253a49a64ace25d9adb62010dd9fb25552164141787162e5b4cab915b4aa45d94655dbb9ed7c378a53b980a0be220a802",
}

type rfcSigner struct {
	id                                  Identifier
	hidingRandomness, bindingRandomness string
	hidingNonce, bindingNonce           string
	hidingCommitment, bindingCommitment string
	bindingFactorInput, bindingFactor   string
	sigShare                            string
}

func unhex(t tb, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustScalarHex(t tb, s string) []byte {
	t.Helper()
	b := unhex(t, s)
	if _, err := decodeScalar(b); err != nil {
		t.Fatalf("vector scalar %s: %v", s, err)
	}
	return b
}

func scalarHex(t tb, s interface{ MarshalBinary() ([]byte, error) }) string {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func checkHex(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got  %s\n want %s", what, got, want)
	}
}

func TestRFC9591Vectors(t *testing.T) {
	v := rfcVector
	secret, err := decodeScalar(mustScalarHex(t, v.groupSecretKey))
	if err != nil {
		t.Fatal(err)
	}
	checkHex(t, "group public key", hex.EncodeToString(elementBytes(g.NewElement().MulGen(secret))), v.groupPublicKey)

	// Shares from the fixed polynomial (circl's RandomScalar ignores its
	// reader, so the coefficients are set directly).
	poly := polynomial{secret}
	for _, c := range v.coefficients {
		s, err := decodeScalar(mustScalarHex(t, c))
		if err != nil {
			t.Fatal(err)
		}
		poly = append(poly, s)
	}
	shares, pub := deal(poly, 3)
	checkHex(t, "public key package group key", hex.EncodeToString(pub.PublicKey().Bytes()), v.groupPublicKey)
	keys := map[Identifier]*KeyPackage{}
	for _, sh := range shares {
		checkHex(t, "share", scalarHex(t, sh.value), v.shares[sh.id])
		kp, err := sh.Verify()
		if err != nil {
			t.Fatalf("share %d does not verify: %v", sh.id, err)
		}
		checkHex(t, "key package group key", hex.EncodeToString(kp.PublicKey().Bytes()), v.groupPublicKey)
		keys[sh.id] = kp
	}

	// Round one through the public API, with the RFC randomness as the
	// reader: hiding randomness first, then binding.
	nonces := map[Identifier]*SigningNonces{}
	var commitments []*SigningCommitment
	for _, s := range v.signers {
		rnd := bytes.NewReader(append(unhex(t, s.hidingRandomness), unhex(t, s.bindingRandomness)...))
		n, err := Commit(rnd, keys[s.id])
		if err != nil {
			t.Fatal(err)
		}
		checkHex(t, "hiding nonce", scalarHex(t, n.hiding), s.hidingNonce)
		checkHex(t, "binding nonce", scalarHex(t, n.binding), s.bindingNonce)
		checkHex(t, "hiding commitment", hex.EncodeToString(elementBytes(n.commitment.hiding)), s.hidingCommitment)
		checkHex(t, "binding commitment", hex.EncodeToString(elementBytes(n.commitment.binding)), s.bindingCommitment)
		nonces[s.id] = n
		commitments = append(commitments, n.Commitment())
	}

	pkg, err := NewSigningPackage(commitments, unhex(t, v.message))
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := newSigningContext(pub.PublicKey(), pkg)
	if err != nil {
		t.Fatal(err)
	}
	inputs := bindingFactorInputs(pub.PublicKey(), pkg)
	for i, s := range v.signers {
		checkHex(t, "binding factor input", hex.EncodeToString(inputs[i]), s.bindingFactorInput)
		checkHex(t, "binding factor", scalarHex(t, ctx.bindingFactors[i]), s.bindingFactor)
	}

	var sigShares []*SignatureShare
	for _, s := range v.signers {
		share, err := Sign(keys[s.id], nonces[s.id], pkg)
		if err != nil {
			t.Fatal(err)
		}
		checkHex(t, "signature share", scalarHex(t, share.z), s.sigShare)
		if err := VerifySignatureShare(pub, pkg, share); err != nil {
			t.Errorf("share %d: %v", s.id, err)
		}
		sigShares = append(sigShares, share)
	}
	sig, err := Aggregate(pub, pkg, sigShares)
	if err != nil {
		t.Fatal(err)
	}
	checkHex(t, "signature", hex.EncodeToString(sig.Bytes()), v.signature)
	if err := Verify(unhex(t, v.groupPublicKey), unhex(t, v.message), unhex(t, v.signature)); err != nil {
		t.Errorf("RFC signature does not verify: %v", err)
	}
	if err := Verify(unhex(t, v.groupPublicKey), []byte("tesT"), unhex(t, v.signature)); err == nil {
		t.Error("RFC signature verifies on another message")
	}
}

// The RFC secret with the RFC polynomial goes through SplitSecret's dealing
// path too: the group key is the secret's public key.
func TestSplitSecretKeepsPublicKey(t *testing.T) {
	_, pub, err := SplitSecret(nil, unhex(t, rfcVector.groupSecretKey), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	checkHex(t, "group key", hex.EncodeToString(pub.PublicKey().Bytes()), rfcVector.groupPublicKey)
}

// The typed values above must agree with the CFRG draft repository's JSON
// (testdata/frost-ristretto255-sha512.json), so a typo in either shows up.
func TestRFC9591VectorsMatchJSON(t *testing.T) {
	raw, err := os.ReadFile("testdata/frost-ristretto255-sha512.json")
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Inputs struct {
			GroupSecretKey string   `json:"group_secret_key"`
			GroupPublicKey string   `json:"group_public_key"`
			Message        string   `json:"message"`
			Coefficients   []string `json:"share_polynomial_coefficients"`
			Shares         []struct {
				ID    Identifier `json:"identifier"`
				Share string     `json:"participant_share"`
			} `json:"participant_shares"`
		} `json:"inputs"`
		RoundOne struct {
			Outputs []struct {
				ID                 Identifier `json:"identifier"`
				HidingRandomness   string     `json:"hiding_nonce_randomness"`
				BindingRandomness  string     `json:"binding_nonce_randomness"`
				HidingNonce        string     `json:"hiding_nonce"`
				BindingNonce       string     `json:"binding_nonce"`
				HidingCommitment   string     `json:"hiding_nonce_commitment"`
				BindingCommitment  string     `json:"binding_nonce_commitment"`
				BindingFactorInput string     `json:"binding_factor_input"`
				BindingFactor      string     `json:"binding_factor"`
			} `json:"outputs"`
		} `json:"round_one_outputs"`
		RoundTwo struct {
			Outputs []struct {
				ID       Identifier `json:"identifier"`
				SigShare string     `json:"sig_share"`
			} `json:"outputs"`
		} `json:"round_two_outputs"`
		Final struct {
			Sig string `json:"sig"`
		} `json:"final_output"`
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	v := rfcVector
	checkHex(t, "secret", j.Inputs.GroupSecretKey, v.groupSecretKey)
	checkHex(t, "public", j.Inputs.GroupPublicKey, v.groupPublicKey)
	checkHex(t, "message", j.Inputs.Message, v.message)
	if !slices.Equal(j.Inputs.Coefficients, v.coefficients) {
		t.Error("coefficients differ")
	}
	for _, s := range j.Inputs.Shares {
		checkHex(t, "share", s.Share, v.shares[s.ID])
	}
	if len(j.RoundOne.Outputs) != len(v.signers) || len(j.RoundTwo.Outputs) != len(v.signers) {
		t.Fatal("signer count differs")
	}
	for i, o := range j.RoundOne.Outputs {
		s := v.signers[i]
		if o.ID != s.id || j.RoundTwo.Outputs[i].ID != s.id {
			t.Fatalf("signer %d: identifier differs", i)
		}
		for _, p := range [][3]string{
			{"hiding randomness", o.HidingRandomness, s.hidingRandomness},
			{"binding randomness", o.BindingRandomness, s.bindingRandomness},
			{"hiding nonce", o.HidingNonce, s.hidingNonce},
			{"binding nonce", o.BindingNonce, s.bindingNonce},
			{"hiding commitment", o.HidingCommitment, s.hidingCommitment},
			{"binding commitment", o.BindingCommitment, s.bindingCommitment},
			{"binding factor input", o.BindingFactorInput, s.bindingFactorInput},
			{"binding factor", o.BindingFactor, s.bindingFactor},
			{"signature share", j.RoundTwo.Outputs[i].SigShare, s.sigShare},
		} {
			checkHex(t, p[0], p[1], p[2])
		}
	}
	checkHex(t, "signature", j.Final.Sig, v.signature)
}
