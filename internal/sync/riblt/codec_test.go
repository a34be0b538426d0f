package riblt

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	ids := randomIDs(rand.New(rand.NewPCG(29, 30)), 1000)
	e := encoderOf(t, testKey(1), 300, ids)
	tests := []struct {
		name string
		b    Batch
	}{
		{"empty", Batch{Start: 5}},
		{"prefix", Batch{Symbols: e.cache[:1]}},
		{"middle", Batch{Start: 17, Symbols: e.cache[17:300]}},
		{"at the end of the stream", Batch{Start: indexLimit - 1, Symbols: e.cache[299:]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := AppendBatch([]byte("prefix"), tc.b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseBatch(enc[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			if got.Start != tc.b.Start || !slices.Equal(got.Symbols, tc.b.Symbols) {
				t.Fatal("round trip changed the batch")
			}
		})
	}
}

func TestParseBatchRefuses(t *testing.T) {
	good, err := AppendBatch(nil, Batch{Start: 3, Symbols: []Symbol{{Sum: [32]byte{1}, Hash: 2, Count: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	symbol := func(count []byte) []byte {
		b := []byte{WireVersion, 0, 1}
		b = append(b, make([]byte, 31)...)
		b = append(b, 9)
		b = append(b, 1, 0, 0, 0, 0, 0, 0, 0)
		return append(b, count...)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"trailing byte", append(slices.Clone(good), 0)},
		{"truncated", good[:len(good)-1]},
		{"truncated header", good[:2]},
		{"non-minimal start", append([]byte{WireVersion, 0x83, 0x00}, good[2:]...)},
		{"non-minimal count", symbol([]byte{0x81, 0x00})},
		{"count above MaxCount", symbol([]byte{0x81, 0x80, 0x80, 0x80, 0x80, 0x20})},
		{"count overflows 64 bits", symbol([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})},
		{"count 0, sum not zero", symbol([]byte{0})},
		{"too many symbols", []byte{WireVersion, 0, 0x81, 0x80, 0x04}},
		{"length larger than the bytes", []byte{WireVersion, 0, 2}},
		{"past the stream's end", append([]byte{WireVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}, good[2:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseBatch(tc.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := ParseBatch(symbol([]byte{1})); err != nil {
		t.Fatalf("the well-formed variant of the cases above: %v", err)
	}
}

func TestAppendBatchRefuses(t *testing.T) {
	tests := []struct {
		name string
		b    Batch
	}{
		{"negative count", Batch{Symbols: []Symbol{{Count: -1, Hash: 1}}}},
		{"count above MaxCount", Batch{Symbols: []Symbol{{Count: MaxCount + 1}}}},
		{"count 0, hash not zero", Batch{Symbols: []Symbol{{Hash: 1}}}},
		{"too many symbols", Batch{Symbols: make([]Symbol, MaxBatchSymbols+1)}},
		{"past the stream's end", Batch{Start: indexLimit, Symbols: make([]Symbol, 1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := AppendBatch([]byte{7}, tc.b)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !bytes.Equal(out, []byte{7}) {
				t.Fatal("a refused batch wrote bytes")
			}
		})
	}
}
