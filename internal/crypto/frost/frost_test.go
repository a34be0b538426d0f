package frost

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestEveryThresholdSubsetSigns(t *testing.T) {
	for _, tc := range []struct{ t, n int }{{1, 1}, {1, 3}, {2, 3}, {3, 5}, {4, 4}, {4, 6}} {
		for _, keygen := range []string{"dealer", "dkg"} {
			t.Run(fmt.Sprintf("%s/%d-of-%d", keygen, tc.t, tc.n), func(t *testing.T) {
				rng := testRand(uint64(tc.t*100 + tc.n))
				var keys []*KeyPackage
				var pub *PublicKeyPackage
				if keygen == "dealer" {
					keys, pub = dealerKeys(t, rng, tc.t, tc.n)
				} else {
					keys, pub = runDKG(t, rng, tc.t, tc.n)
				}
				msg := []byte("every t-subset")
				subsets(tc.n, tc.t, func(idx []int) {
					sig, err := signWith(t, rng, pick(keys, idx), pub, msg, nil)
					if err != nil {
						t.Fatalf("signers %v: %v", idx, err)
					}
					if err := Verify(pub.PublicKey().Bytes(), msg, sig.Bytes()); err != nil {
						t.Fatalf("signers %v: %v", idx, err)
					}
				})
				// All n together sign too.
				if _, err := signWith(t, rng, keys, pub, msg, nil); err != nil {
					t.Fatal(err)
				}
				if tc.t == 1 {
					return
				}
				// t-1 signers are refused by Sign and by Aggregate.
				subsets(tc.n, tc.t-1, func(idx []int) {
					_, err := signWith(t, rng, pick(keys, idx), pub, msg, nil)
					wantErr(t, err, ErrTooFewSigners)
				})
			})
		}
	}
}

// Even with the threshold checks bypassed, t-1 shares interpolate the wrong
// polynomial: the result is not a valid signature.
func TestBelowThresholdCannotForge(t *testing.T) {
	rng := testRand(7)
	keys, pub := dealerKeys(t, rng, 3, 5)
	lowered := make([]*KeyPackage, 2)
	for i := range lowered {
		k := *keys[i]
		k.minSigners = 2
		lowered[i] = &k
	}
	lowPub := *pub
	lowPub.minSigners = 2
	_, err := signWith(t, rng, lowered, &lowPub, []byte("forge"), nil)
	wantErr(t, err, ErrInvalidSignature)
}

func TestPropertyThresholdSigning(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 6).Draw(rt, "n")
		th := rapid.IntRange(1, n).Draw(rt, "t")
		useDKG := rapid.Bool().Draw(rt, "dkg")
		seed := rapid.Uint64().Draw(rt, "seed")
		rng := testRand(seed)
		var keys []*KeyPackage
		var pub *PublicKeyPackage
		if useDKG {
			keys, pub = runDKG(rt, rng, th, n)
		} else {
			keys, pub = dealerKeys(rt, rng, th, n)
		}
		if rapid.Bool().Draw(rt, "refresh") {
			parts := make([]*DKGParticipant, len(keys))
			for i, k := range keys {
				parts[i] = must(NewRefresh(rng, k, pub))
			}
			newKeys, newPub := runSession(rt, parts)
			if !newPub.PublicKey().Equal(pub.PublicKey()) {
				rt.Fatal("refresh changed the group key")
			}
			keys, pub = newKeys, newPub
		}
		perm := rapid.Permutation(keys).Draw(rt, "order")
		k := rapid.IntRange(th, n).Draw(rt, "signers")
		signers := perm[:k]
		msg := rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(rt, "msg")

		sig, err := signWith(rt, rng, signers, pub, msg, nil)
		if err != nil {
			rt.Fatalf("sign: %v", err)
		}
		if err := pub.PublicKey().Verify(msg, sig); err != nil {
			rt.Fatalf("verify: %v", err)
		}
		if err := pub.PublicKey().Verify(append(slices.Clone(msg), 0), sig); !errors.Is(err, ErrInvalidSignature) {
			rt.Fatalf("signature verifies on another message: %v", err)
		}

		if th > 1 {
			_, err := signWith(rt, rng, perm[:th-1], pub, msg, nil)
			if !errors.Is(err, ErrTooFewSigners) {
				rt.Fatalf("t-1 signers: %v", err)
			}
		}

		// Tamper with a subset of shares: every tampered signer is named,
		// nobody else is.
		bad := rapid.SliceOfNDistinct(rapid.IntRange(0, k-1), 1, k, rapid.ID[int]).Draw(rt, "tampered")
		var wantIDs []Identifier
		_, err = signWith(rt, rng, signers, pub, msg, func(shares []*SignatureShare) {
			for _, i := range bad {
				shares[i].z = newScalarFrom(shares[i].z).Add(shares[i].z, g.NewScalar().SetUint64(1))
				wantIDs = append(wantIDs, shares[i].id)
			}
		})
		slices.Sort(wantIDs)
		if !errors.Is(err, ErrInvalidSignatureShare) {
			rt.Fatalf("tampered shares: got %v", err)
		}
		var me *MisbehaviorError
		if !errors.As(err, &me) || !slices.Contains(wantIDs, me.Participant) {
			rt.Fatalf("tampered shares %v: error %v names no culprit", wantIDs, err)
		}
		if got := Culprits(err); !slices.Equal(got, wantIDs) {
			rt.Fatalf("culprits %v, want %v", got, wantIDs)
		}
	})
}

func TestVerifySignatureShareNamesSigner(t *testing.T) {
	rng := testRand(11)
	keys, pub := dealerKeys(t, rng, 2, 3)
	n1 := must(Commit(rng, keys[0]))
	n2 := must(Commit(rng, keys[2]))
	pkg := must(NewSigningPackage([]*SigningCommitment{n2.Commitment(), n1.Commitment()}, []byte("m")))
	if got := pkg.Signers(); !slices.Equal(got, []Identifier{1, 3}) {
		t.Fatalf("signers %v not sorted", got)
	}
	s1 := must(Sign(keys[0], n1, pkg))
	s3 := must(Sign(keys[2], n2, pkg))
	if err := VerifySignatureShare(pub, pkg, s1); err != nil {
		t.Fatal(err)
	}
	// Share of 3 relabelled as 1's: blamed on 1.
	forged := &SignatureShare{id: 1, z: s3.z}
	err := VerifySignatureShare(pub, pkg, forged)
	var me *MisbehaviorError
	if !errors.As(err, &me) || me.Participant != 1 || !errors.Is(err, ErrInvalidSignatureShare) {
		t.Fatalf("got %v", err)
	}
	// Aggregation refuses missing, duplicate and foreign shares.
	_, err = Aggregate(pub, pkg, []*SignatureShare{s1})
	wantErr(t, err, ErrInvalidMessage)
	_, err = Aggregate(pub, pkg, []*SignatureShare{s1, s1, s3})
	wantErr(t, err, ErrDuplicateIdentifier)
	_, err = Aggregate(pub, pkg, []*SignatureShare{s1, s3, {id: 2, z: s3.z}})
	wantErr(t, err, ErrInvalidMessage)
}

func TestNonceSingleUse(t *testing.T) {
	rng := testRand(3)
	keys, pub := dealerKeys(t, rng, 2, 2)
	n1 := must(Commit(rng, keys[0]))
	n2 := must(Commit(rng, keys[1]))
	pkg := must(NewSigningPackage([]*SigningCommitment{n1.Commitment(), n2.Commitment()}, []byte("once")))
	s1 := must(Sign(keys[0], n1, pkg))
	if !n1.hiding.IsZero() || !n1.binding.IsZero() {
		t.Fatal("nonces not zeroed after use")
	}
	_, err := Sign(keys[0], n1, pkg)
	wantErr(t, err, ErrNonceReused)

	// A different package with the same commitment is refused as well: this
	// is the reuse that would leak the key.
	pkg2 := must(NewSigningPackage([]*SigningCommitment{n1.Commitment(), n2.Commitment()}, []byte("twice")))
	_, err = Sign(keys[0], n1, pkg2)
	wantErr(t, err, ErrNonceReused)

	s2 := must(Sign(keys[1], n2, pkg))
	must(Aggregate(pub, pkg, []*SignatureShare{s1, s2}))

	// A failed call consumes the nonces too.
	n3 := must(Commit(rng, keys[0]))
	n4 := must(Commit(rng, keys[1]))
	c3 := n3.Commitment()
	swapped := new(newSigningCommitment(c3.id, n4.Commitment().hiding, c3.binding))
	other := must(NewSigningPackage([]*SigningCommitment{swapped, n4.Commitment()}, []byte("x")))
	_, err = Sign(keys[0], n3, other)
	wantErr(t, err, ErrMissingCommitment)
	_, err = Sign(keys[0], n3, must(NewSigningPackage([]*SigningCommitment{n3.Commitment(), n4.Commitment()}, []byte("x"))))
	wantErr(t, err, ErrNonceReused)

	// Destroyed nonces cannot sign.
	n5 := must(Commit(rng, keys[0]))
	n6 := must(Commit(rng, keys[1]))
	n5.Destroy()
	_, err = Sign(keys[0], n5, must(NewSigningPackage([]*SigningCommitment{n5.Commitment(), n6.Commitment()}, nil)))
	wantErr(t, err, ErrNonceReused)

	// Nonces of one participant with the key of another.
	n7 := must(Commit(rng, keys[0]))
	n8 := must(Commit(rng, keys[1]))
	_, err = Sign(keys[1], n7, must(NewSigningPackage([]*SigningCommitment{n7.Commitment(), n8.Commitment()}, nil)))
	wantErr(t, err, ErrKeyMismatch)
}

func TestSignRejectsSubstitutedCommitment(t *testing.T) {
	rng := testRand(5)
	keys, _ := dealerKeys(t, rng, 2, 3)
	n1 := must(Commit(rng, keys[0]))
	n2 := must(Commit(rng, keys[1]))
	c1 := n1.Commitment()
	c := new(newSigningCommitment(c1.id, c1.hiding, n2.Commitment().binding))
	pkg := must(NewSigningPackage([]*SigningCommitment{c, n2.Commitment()}, []byte("m")))
	_, err := Sign(keys[0], n1, pkg)
	wantErr(t, err, ErrMissingCommitment)
}

func TestNewSigningPackageRejectsDuplicates(t *testing.T) {
	rng := testRand(6)
	keys, _ := dealerKeys(t, rng, 2, 3)
	n1 := must(Commit(rng, keys[0]))
	_, err := NewSigningPackage([]*SigningCommitment{n1.Commitment(), n1.Commitment()}, nil)
	wantErr(t, err, ErrDuplicateIdentifier)
	_, err = NewSigningPackage(nil, nil)
	wantErr(t, err, ErrTooFewSigners)
}

// A 1-of-1 key (a device's own authority) and a plain Schnorr signature both
// verify with the one verifier.
func TestSingleSignerUsesSameVerifier(t *testing.T) {
	rng := testRand(9)
	for _, keygen := range []string{"dealer", "dkg"} {
		var keys []*KeyPackage
		var pub *PublicKeyPackage
		if keygen == "dealer" {
			keys, pub = dealerKeys(t, rng, 1, 1)
		} else {
			keys, pub = runDKG(t, rng, 1, 1)
		}
		sig := must(signWith(t, rng, keys, pub, []byte("solo"), nil))
		if err := Verify(pub.PublicKey().Bytes(), []byte("solo"), sig.Bytes()); err != nil {
			t.Fatalf("%s: %v", keygen, err)
		}
		// The same key signing textbook Schnorr, no FROST machinery.
		plain := schnorrSign(t, keys[0].secret, pub.PublicKey(), []byte("solo"))
		if err := Verify(pub.PublicKey().Bytes(), []byte("solo"), plain); err != nil {
			t.Fatalf("%s plain Schnorr: %v", keygen, err)
		}
	}
}

func TestRefreshKeepsGroupKey(t *testing.T) {
	for _, keygen := range []string{"dealer", "dkg"} {
		t.Run(keygen, func(t *testing.T) {
			rng := testRand(21)
			var keys []*KeyPackage
			var pub *PublicKeyPackage
			if keygen == "dealer" {
				keys, pub = dealerKeys(t, rng, 3, 5)
			} else {
				keys, pub = runDKG(t, rng, 3, 5)
			}
			parts := make([]*DKGParticipant, len(keys))
			for i, k := range keys {
				parts[i] = must(NewRefresh(rng, k, pub))
			}
			newKeys, newPub := runSession(t, parts)
			if !newPub.PublicKey().Equal(pub.PublicKey()) {
				t.Fatal("refresh changed the group key")
			}
			for i := range keys {
				if newKeys[i].secret.IsEqual(keys[i].secret) {
					t.Fatalf("share %d unchanged", i+1)
				}
			}
			msg := []byte("after refresh")
			subsets(5, 3, func(idx []int) {
				if _, err := signWith(t, rng, pick(newKeys, idx), newPub, msg, nil); err != nil {
					t.Fatalf("signers %v: %v", idx, err)
				}
			})
			// An old share mixed with new ones is useless, and the
			// coordinator names its holder.
			mixed := []*KeyPackage{keys[0], newKeys[1], newKeys[2]}
			_, err := signWith(t, rng, mixed, newPub, msg, nil)
			if got := Culprits(err); !slices.Equal(got, []Identifier{1}) {
				t.Fatalf("mixed old/new shares: %v (culprits %v)", err, got)
			}
		})
	}
}

func TestRefreshRejectsForeignKey(t *testing.T) {
	rng := testRand(22)
	keys, _ := dealerKeys(t, rng, 2, 3)
	_, otherPub := dealerKeys(t, rng, 2, 3)
	_, err := NewRefresh(rng, keys[0], otherPub)
	wantErr(t, err, ErrKeyMismatch)
}

func TestDKGStateMachineOrder(t *testing.T) {
	rng := testRand(30)
	p := must(NewDKG(rng, 1, 2, 2))
	_, err := p.Round2(nil)
	wantErr(t, err, ErrWrongState)
	_, _, err = p.Finish(nil)
	wantErr(t, err, ErrWrongState)
	must(p.Round1())
	_, err = p.Round1()
	wantErr(t, err, ErrWrongState)
	// Missing package: reported, state kept, retry possible.
	_, err = p.Round2(nil)
	wantErr(t, err, ErrInvalidMessage)
	q := must(NewDKG(rng, 2, 2, 2))
	r1q := must(q.Round1())
	_, err = p.Round2([]*Round1Package{r1q, r1q})
	wantErr(t, err, ErrDuplicateIdentifier)
	must(p.Round2([]*Round1Package{r1q}))

	_, err = NewDKG(rng, 0, 2, 3)
	wantErr(t, err, ErrInvalidIdentifier)
	_, err = NewDKG(rng, 4, 2, 3)
	wantErr(t, err, ErrInvalidIdentifier)
	_, err = NewDKG(rng, 1, 4, 3)
	wantErr(t, err, ErrInvalidParameters)
	_, err = NewDKG(rng, 1, 0, 3)
	wantErr(t, err, ErrInvalidParameters)
}

// dkgRound1 starts a 3-of-4 session and returns participants and packages.
func dkgRound1(t *testing.T, seed uint64) ([]*DKGParticipant, []*Round1Package) {
	rng := testRand(seed)
	parts := make([]*DKGParticipant, 4)
	r1 := make([]*Round1Package, 4)
	for i := range parts {
		parts[i] = must(NewDKG(rng, Identifier(i+1), 3, 4))
		r1[i] = must(parts[i].Round1())
	}
	return parts, r1
}

func TestDKGNamesCheaterRound1(t *testing.T) {
	cases := map[string]func(p *Round1Package){
		"bad proof z": func(p *Round1Package) { p.proofZ = newScalarFrom(p.proofZ).Add(p.proofZ, g.NewScalar().SetUint64(1)) },
		"bad proof R": func(p *Round1Package) { p.proofR = g.NewElement().Add(p.proofR, g.Generator()) },
		// Replacing C₀ (a rogue key) without knowing its discrete log
		// invalidates the proof.
		"rogue key":        func(p *Round1Package) { p.commitment[0] = g.NewElement().Add(p.commitment[0], g.Generator()) },
		"short commitment": func(p *Round1Package) { p.commitment = p.commitment[:2] },
		"refresh kind":     func(p *Round1Package) { p.refresh = true },
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			parts, r1 := dkgRound1(t, 40)
			bad := *r1[2] // participant 3 cheats towards everyone
			bad.commitment = slices.Clone(bad.commitment)
			tamper(&bad)
			r1[2] = &bad
			for i, p := range parts {
				if i == 2 {
					continue
				}
				_, err := p.Round2(without(r1, i))
				var me *MisbehaviorError
				if !errors.As(err, &me) || me.Participant != 3 {
					t.Fatalf("participant %d: got %v, want participant 3 blamed", i+1, err)
				}
				// The session is dead afterwards.
				_, err = p.Round2(without(r1, i))
				wantErr(t, err, ErrWrongState)
			}
		})
	}
}

func TestDKGNamesCheaterRound2(t *testing.T) {
	parts, r1 := dkgRound1(t, 41)
	inbox := map[Identifier][]*Round2Package{}
	for i, p := range parts {
		for _, m := range must(p.Round2(without(r1, i))) {
			// Participant 2 sends a wrong share to participant 4.
			if m.sender == 2 && m.receiver == 4 {
				m.share = newScalarFrom(m.share).Add(m.share, g.NewScalar().SetUint64(1))
			}
			inbox[m.receiver] = append(inbox[m.receiver], m)
		}
	}
	_, _, err := parts[3].Finish(inbox[4])
	if got := Culprits(err); !slices.Equal(got, []Identifier{2}) || !errors.Is(err, ErrInvalidSecretShare) {
		t.Fatalf("got %v", err)
	}
	// The complaint can be settled by anyone holding 2's broadcast and the
	// revealed share.
	for _, m := range inbox[4] {
		err := VerifyRound2Package(r1[m.sender-1], m)
		if (m.sender == 2) != (err != nil) {
			t.Fatalf("share from %d: %v", m.sender, err)
		}
	}
	// The others are unaffected.
	for i := range 3 {
		must(func() (*KeyPackage, error) { k, _, err := parts[i].Finish(inbox[Identifier(i+1)]); return k, err }())
	}
	// Misrouted package.
	p2, r1b := dkgRound1(t, 42)
	msgs := must(p2[0].Round2(without(r1b, 0)))
	for i := 1; i < 4; i++ {
		must(p2[i].Round2(without(r1b, i)))
	}
	_, _, err = p2[1].Finish(msgs)
	wantErr(t, err, ErrInvalidMessage)
}

func TestKeyPackageRoundTrip(t *testing.T) {
	rng := testRand(50)
	shares, pub, err := TrustedDealerKeygen(rng, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shares {
		enc := must(s.MarshalBinary())
		var s2 SecretShare
		if err := s2.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		k := must(s2.Verify())
		kenc := must(k.MarshalBinary())
		var k2 KeyPackage
		if err := k2.UnmarshalBinary(kenc); err != nil {
			t.Fatal(err)
		}
		if !k2.PublicKey().Equal(pub.PublicKey()) || k2.Identifier() != s.Identifier() || k2.MinSigners() != 2 {
			t.Fatal("key package round trip changed it")
		}
		vs := must(pub.VerifyingShare(k.Identifier()))
		if string(vs) != string(k.VerifyingShare()) {
			t.Fatal("verifying share mismatch")
		}
		vs2 := must(s.Commitment().VerifyingShare(k.Identifier()))
		if string(vs2) != string(vs) {
			t.Fatal("commitment verifying share mismatch")
		}
	}
	// A share that does not match the dealer's commitment is caught.
	bad := *shares[1]
	bad.value = newScalarFrom(bad.value).Add(bad.value, g.NewScalar().SetUint64(1))
	_, err = bad.Verify()
	wantErr(t, err, ErrInvalidSecretShare)
	// Key package whose verifying share does not match its secret.
	enc := must(must(shares[0].Verify()).MarshalBinary())
	enc[4] ^= 1
	var k KeyPackage
	wantErr(t, k.UnmarshalBinary(enc), ErrKeyMismatch)
}

// A proof of knowledge made for one session does not verify in another.
func TestDKGContextBindsProofs(t *testing.T) {
	rng := testRand(43)
	a1 := must(NewDKGWithContext(rng, 1, 2, 2, []byte("ceremony A")))
	a2 := must(NewDKGWithContext(rng, 2, 2, 2, []byte("ceremony A")))
	b1 := must(NewDKGWithContext(rng, 1, 2, 2, []byte("ceremony B")))
	must(a1.Round1())
	must(b1.Round1())
	r := must(a2.Round1())
	_, err := b1.Round2([]*Round1Package{r})
	if got := Culprits(err); !slices.Equal(got, []Identifier{2}) || !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("replayed package: %v", err)
	}
	must(a1.Round2([]*Round1Package{r}))
}

// Two goroutines racing to use the same nonces: exactly one gets a share.
func TestNonceConcurrentUse(t *testing.T) {
	rng := testRand(12)
	keys, _ := dealerKeys(t, rng, 2, 2)
	for range 20 {
		n1 := must(Commit(rng, keys[0]))
		n2 := must(Commit(rng, keys[1]))
		pkg := must(NewSigningPackage([]*SigningCommitment{n1.Commitment(), n2.Commitment()}, []byte("race")))
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := Sign(keys[0], n1, pkg)
				errs <- err
			}()
		}
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("want exactly one success: %v, %v", e1, e2)
		}
		if !errors.Is(e1, ErrNonceReused) && !errors.Is(e2, ErrNonceReused) {
			t.Fatalf("loser did not get ErrNonceReused: %v, %v", e1, e2)
		}
	}
}
