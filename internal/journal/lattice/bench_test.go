package lattice

import (
	"fmt"
	"testing"
)

func device(i int) Device {
	var d Device
	d[0], d[1] = byte(i>>8), byte(i)
	return d
}

// benchORSets returns two replicas of a 1,000-element OR-Set that share 900
// elements and each added 100 of their own, with some removes.
func benchORSets(b *testing.B) (ORSet[String, Device], ORSet[String, Device]) {
	b.Helper()
	var base ORSet[String, Device]
	for i := range 900 {
		base = base.Join(must(base.Add(device(i%16), String(fmt.Sprintf("elem-%04d", i)))))
	}
	x, y := base, base
	for i := range 100 {
		x = x.Join(must(x.Add(device(1), String(fmt.Sprintf("x-%04d", i)))))
		y = y.Join(must(y.Add(device(2), String(fmt.Sprintf("y-%04d", i)))))
	}
	for i := range 50 {
		y = y.Join(y.Remove(String(fmt.Sprintf("elem-%04d", i))))
	}
	return x, y
}

func BenchmarkORSetJoin1000(b *testing.B) {
	x, y := benchORSets(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = x.Join(y)
	}
}

func BenchmarkORSetAddDelta1000(b *testing.B) {
	x, _ := benchORSets(b)
	b.ReportAllocs()
	for b.Loop() {
		d := must(x.Add(device(3), "new"))
		_ = x.Join(d)
	}
}

func benchGCounters() (GCounter[Device], GCounter[Device]) {
	var x, y GCounter[Device]
	for i := range 100 {
		x = x.Join(must(x.Inc(device(i), uint64(i+1))))
		y = y.Join(must(y.Inc(device(i), uint64(100-i))))
	}
	return x, y
}

func BenchmarkGCounterJoin100(b *testing.B) {
	x, y := benchGCounters()
	b.ReportAllocs()
	for b.Loop() {
		_ = x.Join(y)
	}
}

func BenchmarkGCounterIncDelta100(b *testing.B) {
	x, _ := benchGCounters()
	b.ReportAllocs()
	for b.Loop() {
		_ = x.Join(must(x.Inc(device(7), 1)))
	}
}

func BenchmarkORSetEncode1000(b *testing.B) {
	x, y := benchORSets(b)
	s := x.Join(y)
	buf := encode(b, s)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = s.AppendBinary(buf[:0])
	}
}

func BenchmarkORSetDecode1000(b *testing.B) {
	x, y := benchORSets(b)
	buf := encode(b, x.Join(y))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var zero ORSet[String, Device]
	for b.Loop() {
		if _, err := zero.DecodeBinary(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGCounterEncodeDecode100(b *testing.B) {
	x, _ := benchGCounters()
	var zero GCounter[Device]
	b.ReportAllocs()
	for b.Loop() {
		buf, _ := x.MarshalBinary()
		if _, err := zero.DecodeBinary(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeltaCoordinatorORSet(b *testing.B) {
	x, _ := benchORSets(b)
	c, err := NewDeltaCoordinator(x, 100)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		e := String(fmt.Sprintf("e%d", i%2000))
		if _, err := c.Update(func(s ORSet[String, Device]) (ORSet[String, Device], error) {
			if i%3 == 0 {
				return s.Remove(e), nil
			}
			return s.Add(device(5), e)
		}); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 0 {
			c.DrainOutbox()
		}
	}
}
