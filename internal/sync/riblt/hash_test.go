package riblt

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// sipHash24 is a plain SipHash-2-4 over any message, to pin hashID to the
// published test vectors.
func sipHash24(k Key, msg []byte) uint64 {
	k0 := binary.LittleEndian.Uint64(k[0:8])
	k1 := binary.LittleEndian.Uint64(k[8:16])
	v0, v1, v2, v3 := k0^0x736f6d6570736575, k1^0x646f72616e646f6d, k0^0x6c7967656e657261, k1^0x7465646279746573
	n := len(msg)
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
		msg = msg[8:]
	}
	b := uint64(n) << 56
	for i, c := range msg {
		b |= uint64(c) << (8 * i)
	}
	v3 ^= b
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= b
	v2 ^= 0xff
	for range 4 {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

func TestSipHashVectors(t *testing.T) {
	var k Key
	for i := range k {
		k[i] = byte(i)
	}
	msg := make([]byte, 15)
	for i := range msg {
		msg[i] = byte(i)
	}
	// Key 00..0f, messages 00..(n-1): the SipHash paper's appendix and the
	// reference implementation's table.
	tests := []struct {
		n    int
		want uint64
	}{
		{0, 0x726fdb47dd0e0e31},
		{1, 0x74f839c593dc67fd},
		{8, 0x93f5f5799a932462},
		{15, 0xa129ca6149be45e5},
	}
	for _, tc := range tests {
		if got := sipHash24(k, msg[:tc.n]); got != tc.want {
			t.Errorf("SipHash-2-4 of %d bytes = %#x, want %#x", tc.n, got, tc.want)
		}
	}
}

func TestHashIDMatchesSipHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var k Key
		binary.LittleEndian.PutUint64(k[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(k[8:], rng.Uint64())
		id := randomIDs(rng, 1)[0]
		if got, want := hashID(&k, &id), sipHash24(k, id[:]); got != want {
			t.Fatalf("hashID = %#x, SipHash-2-4 = %#x", got, want)
		}
	}
}

func TestDeriveKey(t *testing.T) {
	a, b := DeriveKey([]byte("namespace one")), DeriveKey([]byte("namespace two"))
	if a == b {
		t.Fatal("different secrets gave the same key")
	}
	if a != DeriveKey([]byte("namespace one")) {
		t.Fatal("DeriveKey is not deterministic")
	}
}
