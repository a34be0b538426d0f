package riblt

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"
)

// TestEstimateDifferenceAccuracy: for random differences d, split at random
// between the two sides, the estimate after m ≈ 0.25d, 0.5d, 0.75d, d and
// 1.2d symbols (m ≥ 16, as a session's batches arrive) is within a factor 2
// of d in at least 95% of the readings for each d, unbiased, and spread no
// more than EstimateDifference documents. The common part is 2d ids, so the
// upper bound nLocal+nRemote (5d) never does the estimator's work. Measured
// here: every reading within a factor 2 but three of 200 at d = 10 (m = 16)
// and one of 500 at d = 100 (m = 25).
func TestEstimateDifferenceAccuracy(t *testing.T) {
	tests := []struct{ d, trials int }{{10, 200}, {100, 100}, {1000, 24}, {5000, 8}}
	rng := rand.New(rand.NewPCG(51, 52))
	// Squared errors in units of the documented standard deviation, over
	// all readings: too few per large d (the readings of one trial are
	// correlated) to test the spread there alone.
	var sumZ2 float64
	var allReadings int
	for _, tc := range tests {
		t.Run(fmt.Sprintf("d=%d", tc.d), func(t *testing.T) {
			var checkpoints []uint64
			for _, f := range []float64{0.25, 0.5, 0.75, 1, 1.2} {
				m := max(16, uint64(math.Round(f*float64(tc.d))))
				if len(checkpoints) == 0 || checkpoints[len(checkpoints)-1] != m {
					checkpoints = append(checkpoints, m)
				}
			}
			maxM := checkpoints[len(checkpoints)-1]
			key := testKey(byte(tc.d))
			common := encoderOf(t, key, int(maxM), randomIDs(rng, 2*tc.d))
			var readings, within int
			var sumRatio, sumSq float64
			for range tc.trials {
				onlyL := rng.IntN(tc.d + 1)
				le, re := common.Clone(), common.Clone()
				for i, id := range randomIDs(rng, tc.d) {
					if i < onlyL {
						le.Add(id)
					} else {
						re.Add(id)
					}
				}
				dec, err := NewDecoder(key, int(maxM))
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range checkpoints {
					from := dec.Received()
					if err := dec.Add(Batch{Start: from, Symbols: re.cache[from:m]}, le.cache[from:m]); err != nil {
						t.Fatal(err)
					}
					est, ok := dec.EstimateDifference()
					if !ok {
						t.Fatalf("no estimate after %d symbols", m)
					}
					ratio := float64(est) / float64(tc.d)
					readings++
					if ratio >= 0.5 && ratio <= 2 {
						within++
					}
					sumRatio += ratio
					sumSq += (ratio - 1) * (ratio - 1)
					sumZ2 += (ratio - 1) * (ratio - 1) / (2/float64(m) + 1/(4*float64(tc.d)))
				}
			}
			allReadings += readings
			n := float64(readings)
			frac, mean := float64(within)/n, sumRatio/n
			t.Logf("d=%d, m in %v: %d of %d readings within a factor 2, mean ratio %.3f, rms relative error %.3f",
				tc.d, checkpoints, within, readings, mean, math.Sqrt(sumSq/n))
			if frac < 0.95 {
				t.Errorf("%.1f%% of readings within a factor 2 of d, want ≥ 95%%", 100*frac)
			}
			if math.Abs(mean-1) > 0.1 {
				t.Errorf("mean ratio %.3f, want 1 ± 0.1", mean)
			}
		})
	}
	// Decoded readings are exact and the bounds only pull readings towards
	// d, so the spread may fall short of the documented one, not exceed it.
	rmsZ := math.Sqrt(sumZ2 / float64(allReadings))
	t.Logf("rms error %.2f documented standard deviations over %d readings", rmsZ, allReadings)
	if rmsZ > 1.25 {
		t.Errorf("rms error %.2f documented standard deviations, want ≤ 1.25", rmsZ)
	}
}

// TestEstimateDifferenceBounds: whatever the sets and batches, there is no
// estimate before 8 symbols unless decoded, the decoded size is exact, and
// otherwise the estimate respects what is known: more than the ids peeled,
// at least |nLocal−nRemote|, at most nLocal+nRemote.
func TestEstimateDifferenceBounds(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		common := rapid.IntRange(0, 100).Draw(rt, "common")
		onlyL := rapid.IntRange(0, 80).Draw(rt, "onlyLocal")
		onlyR := rapid.IntRange(0, 80).Draw(rt, "onlyRemote")
		batch := rapid.IntRange(1, 20).Draw(rt, "batch")
		seed := rapid.Uint64().Draw(rt, "seed")
		rng := rand.New(rand.NewPCG(seed, 2))
		l, r, _, _ := sets(rng, common, onlyL, onlyR)
		d := uint64(onlyL + onlyR)
		const n = 400
		key := testKey(byte(seed))
		ls := encoderOf(rt, key, n, l).cache
		rs := encoderOf(rt, key, n, r).cache
		dec, err := NewDecoder(key, n)
		if err != nil {
			rt.Fatal(err)
		}
		lo := uint64(max(onlyL-onlyR, onlyR-onlyL))
		hi := uint64(len(l) + len(r))
		for from := uint64(0); from < n && !dec.Done(); from = dec.Received() {
			to := min(from+uint64(batch), n)
			if err := dec.Add(Batch{Start: from, Symbols: rs[from:to]}, ls[from:to]); err != nil {
				rt.Fatal(err)
			}
			est, ok := dec.EstimateDifference()
			peeled := uint64(len(dec.LocalOnly()) + len(dec.RemoteOnly()))
			switch {
			case dec.Done():
				if !ok || est != d {
					rt.Fatalf("decoded after %d symbols: estimate %d, %t; want %d", to, est, ok, d)
				}
			case to < minEstimateSymbols:
				if ok {
					rt.Fatalf("estimate %d from %d symbols", est, to)
				}
			case !ok:
				rt.Fatalf("no estimate from %d symbols", to)
			case est <= peeled || est < lo || est > hi:
				rt.Fatalf("estimate %d after %d symbols outside the bounds (%d peeled, [%d, %d])", est, to, peeled, lo, hi)
			}
		}
	})
}

func TestEstimateDifferenceAfterError(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	l, r, _, _ := sets(rng, 50, 40, 40)
	ls := encoderOf(t, testKey(1), 32, l).cache
	rs := encoderOf(t, testKey(1), 32, r).cache
	dec, err := NewDecoder(testKey(1), 32)
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.Add(Batch{Symbols: rs[:16]}, ls[:16]); err != nil {
		t.Fatal(err)
	}
	if _, ok := dec.EstimateDifference(); !ok {
		t.Fatal("no estimate from 16 symbols")
	}
	if err := dec.Add(Batch{Start: 17, Symbols: rs[17:20]}, ls[17:20]); err == nil {
		t.Fatal("a batch past the next index was accepted")
	}
	if est, ok := dec.EstimateDifference(); ok {
		t.Fatalf("estimate %d from a failed decoder", est)
	}
}

// BenchmarkEstimateDifference: an estimate after 4,096 symbols of a
// difference too large to have decoded.
func BenchmarkEstimateDifference(b *testing.B) {
	const m = 4096
	rng := rand.New(rand.NewPCG(55, 56))
	l, r, _, _ := sets(rng, 1000, 5000, 5000)
	ls := encoderOf(b, testKey(1), m, l).cache
	rs := encoderOf(b, testKey(1), m, r).cache
	dec, err := NewDecoder(testKey(1), m)
	if err != nil {
		b.Fatal(err)
	}
	if err := dec.Add(Batch{Symbols: rs}, ls); err != nil {
		b.Fatal(err)
	}
	var est uint64
	b.ReportAllocs()
	for b.Loop() {
		var ok bool
		if est, ok = dec.EstimateDifference(); !ok {
			b.Fatal("no estimate")
		}
	}
	b.ReportMetric(float64(est)/10000, "estimate/d")
}
