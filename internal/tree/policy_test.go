package tree

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"pgregory.net/rapid"
)

func mustKOfN(t tb, k int) Policy {
	t.Helper()
	p, err := KOfN(k)
	if err != nil {
		t.Fatalf("KOfN(%d): %v", k, err)
	}
	return p
}

func TestKOfN(t *testing.T) {
	if mustKOfN(t, 1) != Any() {
		t.Error("KOfN(1) is not Any")
	}
	if p := mustKOfN(t, MaxThreshold); p.String() != "65535-of-n" {
		t.Errorf("KOfN(MaxThreshold) = %s", p)
	}
	for _, k := range []int{-1, 0, MaxThreshold + 1} {
		if _, err := KOfN(k); !errors.Is(err, ErrPolicy) || !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("KOfN(%d): %v", k, err)
		}
	}
	var zero Policy
	if zero != All() {
		t.Error("the zero Policy is not All")
	}
}

func TestRequired(t *testing.T) {
	for _, c := range []struct {
		p    Policy
		n    int
		want int // 0: unsatisfiable
	}{
		{Any(), 1, 1},
		{Any(), 9, 1},
		{All(), 1, 1},
		{All(), 9, 9},
		{mustKOfN(t, 2), 2, 2},
		{mustKOfN(t, 2), 9, 2},
		{mustKOfN(t, 3), 2, 0},
		{Any(), 0, 0},
		{All(), 0, 0},
		{mustKOfN(t, 2), -1, 0},
	} {
		got, err := Required(c.p, c.n)
		if c.want == 0 {
			if !errors.Is(err, ErrPolicyUnsatisfiable) || !errors.Is(err, core.ErrInvalidArgument) {
				t.Errorf("Required(%s, %d) = %d, %v; want ErrPolicyUnsatisfiable", c.p, c.n, got, err)
			}
		} else if err != nil || got != c.want {
			t.Errorf("Required(%s, %d) = %d, %v; want %d", c.p, c.n, got, err, c.want)
		}
	}
}

func TestStrictnessTable(t *testing.T) {
	k2, k3 := mustKOfN(t, 2), mustKOfN(t, 3)
	for _, c := range []struct {
		proposed, current Policy
		n                 int
		want              bool
	}{
		{k3, k2, 3, true},
		{k2, k3, 3, false},
		{All(), k3, 3, true},
		{k3, All(), 3, false}, // same signers among 3, but stops growing with the branch
		{Any(), All(), 1, false},
		{All(), Any(), 1, true},
		{k3, Any(), 2, false}, // stricter, but 2 members cannot meet it
		{All(), mustKOfN(t, 5), 3, true},
		{Any(), Any(), 1, true},
		{Any(), Any(), 0, false},
	} {
		if got := AtLeastAsStrict(c.proposed, c.current, c.n); got != c.want {
			t.Errorf("AtLeastAsStrict(%s, %s, %d) = %v", c.proposed, c.current, c.n, got)
		}
	}
	if Meet(k2, All()) != All() || Meet(Any(), k2) != k2 || Meet(k3, k2) != k3 {
		t.Error("Meet does not pick the stricter policy")
	}
}

func drawPolicy(t *rapid.T, label string) Policy {
	switch rapid.IntRange(0, 3).Draw(t, label+" kind") {
	case 0:
		return Any()
	case 1:
		return All()
	case 2:
		return mustKOfN(t, rapid.IntRange(2, 8).Draw(t, label+" small k"))
	}
	return mustKOfN(t, rapid.IntRange(2, MaxThreshold).Draw(t, label+" k"))
}

// threshold is the member count from which p can be met.
func threshold(p Policy) int {
	if p.kind == kindKOfN {
		return int(p.k)
	}
	return 1
}

func TestMeetLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := drawPolicy(t, "a"), drawPolicy(t, "b"), drawPolicy(t, "c")
		ab := Meet(a, b)
		if Meet(ab, c) != Meet(a, Meet(b, c)) {
			t.Fatalf("not associative: %s %s %s", a, b, c)
		}
		if ab != Meet(b, a) {
			t.Fatalf("not commutative: %s %s", a, b)
		}
		if Meet(a, a) != a {
			t.Fatalf("not idempotent: %s", a)
		}
		if Meet(a, Any()) != a || Meet(a, All()) != All() {
			t.Fatalf("Any is not the identity or All not absorbing: %s", a)
		}
		if ab != a && ab != b {
			t.Fatalf("Meet(%s, %s) = %s, neither", a, b, ab)
		}
		// The meet is at least as strict as each, wherever it can be met,
		// and needs exactly the larger of their signer counts.
		n := max(threshold(ab), rapid.IntRange(1, 2*MaxThreshold).Draw(t, "n"))
		if !AtLeastAsStrict(ab, a, n) || !AtLeastAsStrict(ab, b, n) {
			t.Fatalf("Meet(%s, %s) = %s is not at least as strict as both among %d", a, b, ab, n)
		}
		ra, errA := Required(a, n)
		rb, errB := Required(b, n)
		rab, err := Required(ab, n)
		if err != nil || (errA != nil && errB != nil) {
			t.Fatalf("Required among %d: %v; %v %v", n, err, errA, errB)
		}
		if errA == nil && errB == nil && rab != max(ra, rb) {
			t.Fatalf("Required(Meet(%s, %s), %d) = %d, want max(%d, %d)", a, b, n, rab, ra, rb)
		}
	})
}

// AtLeastAsStrict against its definition: proposed can be met by n members
// and, at every member count m ≥ n where current can be met, needs at least
// as many signers. Beyond max(n, both thresholds) the counts only change for
// All, so the member counts up to one past that are all that can differ.
func TestAtLeastAsStrictDefinition(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		proposed, current := drawPolicy(t, "proposed"), drawPolicy(t, "current")
		n := rapid.IntRange(-1, MaxThreshold+2).Draw(t, "n")
		_, err := Required(proposed, n)
		want := err == nil
		top := max(n, threshold(proposed), threshold(current)) + 1
		for _, m := range []int{n, threshold(proposed), threshold(current), top - 1, top} {
			if m < n || !want {
				continue
			}
			rc, err := Required(current, m)
			if err != nil {
				continue
			}
			rp, err := Required(proposed, m)
			if err != nil {
				t.Fatalf("%s met by %d members but not by %d", proposed, n, m)
			}
			if rp < rc {
				want = false
			}
		}
		if got := AtLeastAsStrict(proposed, current, n); got != want {
			t.Fatalf("AtLeastAsStrict(%s, %s, %d) = %v, want %v", proposed, current, n, got, want)
		}
	})
}

func TestPolicyEncoding(t *testing.T) {
	for _, c := range []struct {
		p    Policy
		wire []byte
	}{
		{Any(), []byte{1, 1}},
		{mustKOfN(t, 2), []byte{1, 2, 0, 2}},
		{mustKOfN(t, 258), []byte{1, 2, 1, 2}},
		{mustKOfN(t, MaxThreshold), []byte{1, 2, 0xff, 0xff}},
		{All(), []byte{1, 3}},
	} {
		if got := AppendPolicy([]byte{9}, c.p); !bytes.Equal(got, append([]byte{9}, c.wire...)) {
			t.Errorf("AppendPolicy(%s) = %x, want 09%x", c.p, got, c.wire)
		}
		if p, err := ParsePolicy(c.wire); err != nil || p != c.p {
			t.Errorf("ParsePolicy(%x) = %s, %v; want %s", c.wire, p, err, c.p)
		}
	}
	for _, b := range [][]byte{
		nil,
		{1},
		{0, 1},       // version 0
		{2, 1},       // version 2
		{1, 0},       // kind 0
		{1, 4},       // kind 4
		{1, 1, 0},    // trailing byte
		{1, 3, 0, 0}, // All with a threshold
		{1, 2},       // KOfN without its threshold
		{1, 2, 0},    // truncated threshold
		{1, 2, 0, 0}, // 0-of-n
		{1, 2, 0, 1}, // 1-of-n is Any's to encode
		{1, 2, 0, 2, 0},
	} {
		if p, err := ParsePolicy(b); !errors.Is(err, ErrPolicy) || !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("ParsePolicy(%x) = %s, %v; want ErrPolicy", b, p, err)
		}
	}
}

func TestPolicyEncodingRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawPolicy(t, "p")
		if q, err := ParsePolicy(AppendPolicy(nil, p)); err != nil || q != p {
			t.Fatalf("%s: parsed back as %s, %v", p, q, err)
		}
	})
}

// FuzzParsePolicy: ParsePolicy accepts only canonical bytes, so whatever it
// accepts re-encodes to the input, and parses again to the same policy.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte{1, 1})
	f.Add([]byte{1, 2, 0, 3})
	f.Add([]byte{1, 3})
	f.Add([]byte{1, 2, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("ParsePolicy(%x): %v does not wrap ErrPolicy", b, err)
			}
			return
		}
		enc := AppendPolicy(nil, p)
		if !bytes.Equal(enc, b) {
			t.Fatalf("ParsePolicy(%x) = %s, which encodes as %x", b, p, enc)
		}
		if q, err := ParsePolicy(enc); err != nil || q != p {
			t.Fatalf("second parse of %x: %s, %v", enc, q, err)
		}
	})
}
