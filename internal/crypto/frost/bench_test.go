package frost

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var benchConfigs = []struct{ t, n int }{{2, 3}, {3, 5}, {7, 10}}

func benchName(t, n int) string { return fmt.Sprintf("%d-of-%d", t, n) }

// BenchmarkKeygenDealer: dealing plus every participant's share verification.
func BenchmarkKeygenDealer(b *testing.B) {
	for _, c := range benchConfigs {
		b.Run(benchName(c.t, c.n), func(b *testing.B) {
			for b.Loop() {
				shares, _, err := TrustedDealerKeygen(nil, c.t, c.n)
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range shares {
					if _, err := s.Verify(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkKeygenDKG: a whole session, all n participants' work in one
// process (divide by n for one participant's share of it).
func BenchmarkKeygenDKG(b *testing.B) {
	for _, c := range benchConfigs {
		b.Run(benchName(c.t, c.n), func(b *testing.B) {
			for b.Loop() {
				runDKG(b, nil, c.t, c.n)
			}
		})
	}
}

// BenchmarkDKGParticipant: one participant's Round1, Round2 and Finish in a
// session of the given size.
func BenchmarkDKGParticipant(b *testing.B) {
	for _, c := range benchConfigs {
		// Packages of the other participants, produced once.
		others := make([]*DKGParticipant, c.n)
		r1 := make([]*Round1Package, c.n)
		for i := 1; i < c.n; i++ {
			others[i] = must(NewDKG(nil, Identifier(i+1), c.t, c.n))
			r1[i] = must(others[i].Round1())
		}
		b.Run(benchName(c.t, c.n)+"/round1", func(b *testing.B) {
			for b.Loop() {
				p := must(NewDKG(nil, 1, c.t, c.n))
				must(p.Round1())
			}
		})
		b.Run(benchName(c.t, c.n)+"/round2", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				p := must(NewDKG(nil, 1, c.t, c.n))
				must(p.Round1())
				b.StartTimer()
				must(p.Round2(r1[1:]))
			}
		})
		b.Run(benchName(c.t, c.n)+"/finish", func(b *testing.B) {
			p := must(NewDKG(nil, 1, c.t, c.n))
			r1[0] = must(p.Round1())
			var toMe []*Round2Package
			for i := 1; i < c.n; i++ {
				for _, m := range must(others[i].Round2(without(r1, i))) {
					if m.receiver == 1 {
						toMe = append(toMe, m)
					}
				}
			}
			must(p.Round2(r1[1:]))
			ownShare := newScalarFrom(p.ownShare)
			for b.Loop() {
				b.StopTimer()
				// Finish consumes the state; rebuild it outside the timer.
				q := *p
				q.ownShare = newScalarFrom(ownShare)
				b.StartTimer()
				if _, _, err := q.Finish(toMe); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignRound1: one signer's Commit.
func BenchmarkSignRound1(b *testing.B) {
	keys, _ := dealerKeys(b, nil, 3, 5)
	for b.Loop() {
		n, err := Commit(nil, keys[0])
		if err != nil {
			b.Fatal(err)
		}
		n.Destroy()
	}
}

// BenchmarkSignRound2: one signer's Sign with t signers out of n.
func BenchmarkSignRound2(b *testing.B) {
	for _, c := range benchConfigs {
		b.Run(benchName(c.t, c.n), func(b *testing.B) {
			keys, _ := dealerKeys(b, nil, c.t, c.n)
			signers := keys[:c.t]
			comms := make([]*SigningCommitment, c.t)
			nonces := make([]*SigningNonces, c.t)
			for i, k := range signers {
				nonces[i] = must(Commit(nil, k))
				comms[i] = nonces[i].Commitment()
			}
			pkg := must(NewSigningPackage(comms, []byte("benchmark message")))
			for b.Loop() {
				b.StopTimer()
				// Fresh single-use nonces with the same commitment, rebuilt
				// outside the timer: only Sign is measured.
				n := &SigningNonces{hiding: newScalarFrom(nonces[0].hiding), binding: newScalarFrom(nonces[0].binding), commitment: nonces[0].commitment}
				b.StartTimer()
				if _, err := Sign(signers[0], n, pkg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignParticipant: one signer's whole work for a 3-of-5 signature,
// Commit plus Sign (the other signers' commitments are prepared outside the
// timer).
func BenchmarkSignParticipant(b *testing.B) {
	keys, _ := dealerKeys(b, nil, 3, 5)
	var others []*SigningCommitment
	for _, k := range keys[1:3] {
		others = append(others, must(Commit(nil, k)).Commitment())
	}
	msg := []byte("benchmark message")
	for b.Loop() {
		n, err := Commit(nil, keys[0])
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		pkg := must(NewSigningPackage(append([]*SigningCommitment{n.Commitment()}, others...), msg))
		b.StartTimer()
		if _, err := Sign(keys[0], n, pkg); err != nil {
			b.Fatal(err)
		}
	}
}

func signedPackage(b *testing.B, t, n int) (*PublicKeyPackage, *SigningPackage, []*SignatureShare, *Signature) {
	keys, pub := dealerKeys(b, nil, t, n)
	comms := make([]*SigningCommitment, t)
	nonces := make([]*SigningNonces, t)
	for i := range t {
		nonces[i] = must(Commit(nil, keys[i]))
		comms[i] = nonces[i].Commitment()
	}
	pkg := must(NewSigningPackage(comms, []byte("benchmark message")))
	shares := make([]*SignatureShare, t)
	for i := range t {
		shares[i] = must(Sign(keys[i], nonces[i], pkg))
	}
	sig := must(Aggregate(pub, pkg, shares))
	return pub, pkg, shares, sig
}

// BenchmarkAggregate: the coordinator's Aggregate, which includes verifying
// the resulting signature.
func BenchmarkAggregate(b *testing.B) {
	for _, c := range benchConfigs {
		b.Run(benchName(c.t, c.n), func(b *testing.B) {
			pub, pkg, shares, _ := signedPackage(b, c.t, c.n)
			for b.Loop() {
				if _, err := Aggregate(pub, pkg, shares); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifySignatureShare: checking one share on arrival.
func BenchmarkVerifySignatureShare(b *testing.B) {
	pub, pkg, shares, _ := signedPackage(b, 3, 5)
	for b.Loop() {
		if err := VerifySignatureShare(pub, pkg, shares[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify compares the package's verifier on a 3-of-5 signature
// with a textbook single-key Schnorr verification over the same group (raw
// circl calls, schnorrVerifyPlain), interleaved in the same loop so both see
// the same machine state. Both start from the 64-byte signature and a decoded
// public key. The "ratio" sub-benchmark reports the median frost/plain time
// ratio over alternating batches; its ns/op covers 16 of each.
func BenchmarkVerify(b *testing.B) {
	pub, pkg, _, sig := signedPackage(b, 3, 5)
	msg := pkg.Message()
	sigBytes := sig.Bytes()
	pk := pub.PublicKey()
	pkEnc := pk.Bytes()
	frostVerify := func() {
		s, err := ParseSignature(sigBytes)
		if err != nil {
			b.Fatal(err)
		}
		if err := pk.Verify(msg, s); err != nil {
			b.Fatal(err)
		}
	}
	plainVerify := func() {
		if !schnorrVerifyPlain(pk.e, pkEnc, msg, sigBytes) {
			b.Fatal("plain verify failed")
		}
	}
	b.Run("frost", func(b *testing.B) {
		for b.Loop() {
			frostVerify()
		}
	})
	b.Run("schnorr-plain", func(b *testing.B) {
		for b.Loop() {
			plainVerify()
		}
	})
	b.Run("ratio", func(b *testing.B) {
		// Alternate short batches of each and take the median of the
		// per-batch ratios, so a load spike on a shared machine skews one
		// batch rather than the result.
		const batch = 16
		var ratios []float64
		var tf, tp time.Duration
		for b.Loop() {
			t0 := time.Now()
			for range batch {
				frostVerify()
			}
			t1 := time.Now()
			for range batch {
				plainVerify()
			}
			t2 := time.Now()
			tf += t1.Sub(t0)
			tp += t2.Sub(t1)
			ratios = append(ratios, float64(t1.Sub(t0))/float64(t2.Sub(t1)))
		}
		slices.Sort(ratios)
		n := float64(b.N * batch)
		b.ReportMetric(float64(tf.Nanoseconds())/n, "frost-ns/verify")
		b.ReportMetric(float64(tp.Nanoseconds())/n, "plain-ns/verify")
		b.ReportMetric(ratios[len(ratios)/2], "frost/plain")
	})
}
