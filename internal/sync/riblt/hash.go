package riblt

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// Key is the 128-bit SipHash key of one namespace's sketch. Peers that
// reconcile must use the same key; it must be secret to the namespace's members.
type Key [16]byte

// DeriveKey turns a namespace secret (shared by its members only) into a
// sketch key, domain-separated so the secret's other uses cannot collide.
func DeriveKey(namespaceSecret []byte) Key {
	h := sha256.New()
	h.Write([]byte("aura/riblt/key/v1\x00"))
	h.Write(namespaceSecret)
	var k Key
	copy(k[:], h.Sum(nil))
	return k
}

// hashID is SipHash-2-4 of a 32-byte id under k. Specialised to the fixed
// length: four message words, then the length block (32<<56).
func hashID(k *Key, id *[32]byte) uint64 {
	k0 := binary.LittleEndian.Uint64(k[0:8])
	k1 := binary.LittleEndian.Uint64(k[8:16])
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	for i := 0; i < 32; i += 8 {
		m := binary.LittleEndian.Uint64(id[i : i+8])
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
	}
	const b = uint64(32) << 56
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

func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}
