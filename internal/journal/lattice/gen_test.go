package lattice

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// Small domains on purpose: few replicas and elements make concurrent writes
// to the same element, equal timestamps and re-adds common.
const nReplicas = 3

type (
	tPN    = PNCounter[Uint64]
	tLWW   = LWWRegister[String, Uint64]
	tMV    = MVRegister[String, Uint64]
	tORSet = ORSet[String, Uint64]
	tMapPN = ORMap[String, tPN, Uint64]
	tMapOR = ORMap[String, tORSet, Uint64]
)

func genReplica(t *rapid.T) Uint64 {
	return Uint64(rapid.Uint64Range(0, nReplicas-1).Draw(t, "replica"))
}

func genElem(t *rapid.T) String {
	return String(rapid.SampledFrom([]string{"a", "b", "c", "", "\x00\xff"}).Draw(t, "elem"))
}

// mutator produces a delta of s as replica r would.
type mutator[T any] func(t *rapid.T, r Uint64, s T) T

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func mutGCounter(t *rapid.T, r Uint64, s GCounter[Uint64]) GCounter[Uint64] {
	return must(s.Inc(r, rapid.Uint64Range(0, 5).Draw(t, "n")))
}

func mutPN(t *rapid.T, r Uint64, s tPN) tPN {
	return must(s.Add(r, rapid.Int64Range(-5, 5).Draw(t, "by")))
}

func mutMax(t *rapid.T, _ Uint64, s MaxRegister[Int64]) MaxRegister[Int64] {
	return s.Set(Int64(rapid.Int64Range(-3, 3).Draw(t, "v")))
}

func mutLWW(t *rapid.T, r Uint64, s tLWW) tLWW {
	v := genElem(t)
	if rapid.Bool().Draw(t, "assign") {
		// Arbitrary timestamps, including ties with different values.
		ts := Timestamp[Uint64]{Lamport: rapid.Uint64Range(0, 3).Draw(t, "lamport"), Replica: r}
		return s.Assign(ts, v)
	}
	return must(s.Set(r, v))
}

func mutMV(t *rapid.T, r Uint64, s tMV) tMV {
	if rapid.IntRange(0, 4).Draw(t, "op") == 0 {
		return s.Clear()
	}
	return must(s.Set(r, genElem(t)))
}

func mutGSet(t *rapid.T, _ Uint64, s GSet[String]) GSet[String] { return s.Add(genElem(t)) }

func mutORSet(t *rapid.T, r Uint64, s tORSet) tORSet {
	e := genElem(t)
	if rapid.Bool().Draw(t, "remove") {
		return s.Remove(e)
	}
	return must(s.Add(r, e))
}

func mutMapPN(t *rapid.T, r Uint64, s tMapPN) tMapPN {
	k := genElem(t)
	if rapid.IntRange(0, 3).Draw(t, "op") == 0 {
		return s.Remove(k)
	}
	return must(s.Update(r, k, func(v tPN) (tPN, error) { return mutPN(t, r, v), nil }))
}

func mutMapOR(t *rapid.T, r Uint64, s tMapOR) tMapOR {
	k := genElem(t)
	if rapid.IntRange(0, 3).Draw(t, "op") == 0 {
		return s.Remove(k)
	}
	return must(s.Update(r, k, func(v tORSet) (tORSet, error) { return mutORSet(t, r, v), nil }))
}

// world runs a random history of local mutations and state merges on
// nReplicas replicas and returns their final states and every delta made, so
// the states are related the way real replicas are (shared history,
// concurrent edits).
func world[T Join[T]](t *rapid.T, mut mutator[T]) ([nReplicas]T, []T) {
	var states [nReplicas]T
	var deltas []T
	steps := rapid.IntRange(0, 25).Draw(t, "steps")
	for range steps {
		i := rapid.IntRange(0, nReplicas-1).Draw(t, "i")
		if rapid.IntRange(0, 3).Draw(t, "merge") == 0 {
			j := rapid.IntRange(0, nReplicas-1).Draw(t, "j")
			states[i] = states[i].Join(states[j])
			continue
		}
		d := mut(t, Uint64(i), states[i])
		deltas = append(deltas, d)
		states[i] = states[i].Join(d)
	}
	return states, deltas
}

// joinCase bundles what the generic law tests need about a join type.
type joinCase[T Nested[T]] struct {
	name string
	mut  mutator[T]
}

func (c joinCase[T]) run(t *testing.T, f func(*testing.T, mutator[T])) {
	t.Run(c.name, func(t *testing.T) { f(t, c.mut) })
}

// forEachJoin runs f against every join type, which is how the law tests
// guarantee they cover all of them.
type joinSuite struct {
	gcounter joinCase[GCounter[Uint64]]
	pn       joinCase[tPN]
	max      joinCase[MaxRegister[Int64]]
	lww      joinCase[tLWW]
	mv       joinCase[tMV]
	gset     joinCase[GSet[String]]
	orset    joinCase[tORSet]
	mapPN    joinCase[tMapPN]
	mapOR    joinCase[tMapOR]
}

func suite() joinSuite {
	return joinSuite{
		gcounter: joinCase[GCounter[Uint64]]{"GCounter", mutGCounter},
		pn:       joinCase[tPN]{"PNCounter", mutPN},
		max:      joinCase[MaxRegister[Int64]]{"MaxRegister", mutMax},
		lww:      joinCase[tLWW]{"LWWRegister", mutLWW},
		mv:       joinCase[tMV]{"MVRegister", mutMV},
		gset:     joinCase[GSet[String]]{"GSet", mutGSet},
		orset:    joinCase[tORSet]{"ORSet", mutORSet},
		mapPN:    joinCase[tMapPN]{"ORMapPN", mutMapPN},
		mapOR:    joinCase[tMapOR]{"ORMapORSet", mutMapOR},
	}
}

// tb is what both *testing.T and *rapid.T provide.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

func encode[T interface {
	AppendBinary([]byte) ([]byte, error)
}](t tb, v T) []byte {
	t.Helper()
	b, err := v.AppendBinary(nil)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

func show[T interface {
	AppendBinary([]byte) ([]byte, error)
}](v T) string {
	b, _ := v.AppendBinary(nil)
	return fmt.Sprintf("%x", b)
}

// Meet types are generated directly: any value is reachable.
func genCapSet(t *rapid.T) CapSet[String] {
	if rapid.IntRange(0, 4).Draw(t, "top") == 0 {
		return AllCapabilities[String]()
	}
	caps := rapid.SliceOfN(rapid.Custom(genElem), 0, 4).Draw(t, "caps")
	return NewCapSet(caps...)
}

func genMinReg(t *rapid.T) MinRegister[Int64] {
	if rapid.IntRange(0, 3).Draw(t, "unset") == 0 {
		return MinRegister[Int64]{}
	}
	return NewMinRegister(Int64(rapid.Int64Range(-3, 3).Draw(t, "v")))
}
