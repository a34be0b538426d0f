package riblt

import "encoding/binary"

// Symbol is one coded symbol. In an Encoder's stream Count is the number of
// ids mapped to it (never negative); in a Decoder it is a difference of two
// such counts.
type Symbol struct {
	Sum   [32]byte // XOR of the ids mapped here
	Hash  uint64   // XOR of their keyed hashes
	Count int64    // how many ids are mapped here
}

// IsZero reports whether the symbol is empty (or its two sides cancelled).
func (s *Symbol) IsZero() bool {
	return s.Count == 0 && s.Hash == 0 && s.Sum == [32]byte{}
}

// apply XORs id (with hash h) in and moves Count by delta (+1 add, -1 remove).
func (s *Symbol) apply(id *[32]byte, h uint64, delta int64) {
	xor32(&s.Sum, id)
	s.Hash ^= h
	s.Count += delta
}

// xor32 XORs b into a a word at a time.
func xor32(a, b *[32]byte) {
	for i := 0; i < 32; i += 8 {
		binary.LittleEndian.PutUint64(a[i:], binary.LittleEndian.Uint64(a[i:])^binary.LittleEndian.Uint64(b[i:]))
	}
}
