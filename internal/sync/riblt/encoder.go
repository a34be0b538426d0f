package riblt

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"iter"
)

const (
	// MaxCacheLen bounds an Encoder's cached prefix (48 B per symbol).
	MaxCacheLen = 1 << 20
	// MaxRange bounds one Symbols call, so a peer's request cannot make the
	// caller allocate without limit.
	MaxRange = 1 << 20
)

// Encoder maintains the first CacheLen coded symbols of a set's stream. It is
// not safe for concurrent use; the caller serialises it with the journal's
// commits and hands sessions copies (Symbols, Clone).
type Encoder struct {
	key   Key
	cache []Symbol
}

// NewEncoder returns an encoder of the empty set under key, caching the
// first cacheLen symbols (1 ≤ cacheLen ≤ MaxCacheLen). Memory is
// 48·cacheLen bytes whatever the set's size (192 KiB for 4,096).
func NewEncoder(key Key, cacheLen int) (*Encoder, error) {
	if cacheLen < 1 || cacheLen > MaxCacheLen {
		return nil, fmt.Errorf("cache length %d not in [1, %d]: %w", cacheLen, MaxCacheLen, ErrRange)
	}
	return &Encoder{key: key, cache: make([]Symbol, cacheLen)}, nil
}

// Add inserts id. Cost: one SipHash and about 2·ln(CacheLen/2)+1 symbol
// updates (≈ 17 for 4,096; ≈ 0.5 µs, BenchmarkEncoderAdd), no allocation. Adding an id twice is the caller's bug: the
// stream then encodes a multiset and will not reconcile.
func (e *Encoder) Add(id [32]byte) { e.update(&id, 1) }

// Remove deletes id, which must be in the set; removing an absent id
// corrupts the sketch (only the empty set is detected).
func (e *Encoder) Remove(id [32]byte) error {
	if e.cache[0].Count == 0 {
		return ErrEmpty
	}
	e.update(&id, -1)
	return nil
}

func (e *Encoder) update(id *[32]byte, delta int64) {
	h := hashID(&e.key, id)
	m := newMapping(h)
	n := uint64(len(e.cache))
	for idx := uint64(0); idx < n; idx = m.next() {
		e.cache[idx].apply(id, h, delta)
	}
}

// Len is the size of the encoded set (symbol 0 holds every id).
func (e *Encoder) Len() int64 { return e.cache[0].Count }

// CacheLen is the number of cached symbols.
func (e *Encoder) CacheLen() int { return len(e.cache) }

// Clone returns an independent copy, e.g. a snapshot for a session while
// inserts go on.
func (e *Encoder) Clone() *Encoder {
	c := &Encoder{key: e.key, cache: make([]Symbol, len(e.cache))}
	copy(c.cache, e.cache)
	return c
}

// Symbols returns symbols [from, to) of the set's stream (to-from ≤ MaxRange).
// Within the cached prefix this is a copy. Past it, they are computed by
// streaming over items, which must yield exactly the encoded set (checked by
// its size): one SipHash plus about 2·ln(to/2)+1 mapping steps per item, so
// O(n·log to) whatever the range's length (≈ 0.5 µs per id for [4096, 8192),
// i.e. ≈ 0.5 s for a million ids, measured by BenchmarkSymbolsPastCache).
// items may be nil when to ≤ CacheLen.
func (e *Encoder) Symbols(from, to uint64, items iter.Seq[[32]byte]) ([]Symbol, error) {
	if from > to || to > indexLimit || to-from > MaxRange {
		return nil, fmt.Errorf("symbols [%d, %d): %w", from, to, ErrRange)
	}
	out := make([]Symbol, to-from)
	n := uint64(len(e.cache))
	if from < n {
		copy(out, e.cache[from:min(to, n)])
	}
	if to <= n {
		return out, nil
	}
	if items == nil {
		return nil, fmt.Errorf("symbols [%d, %d) past the cached %d need the items: %w", from, to, n, ErrItems)
	}
	start := max(from, n)
	var count int64
	for id := range items {
		count++
		h := hashID(&e.key, &id)
		m := newMapping(h)
		idx := uint64(0)
		for idx < start {
			idx = m.next()
		}
		for ; idx < to; idx = m.next() {
			out[idx-from].apply(&id, h, 1)
		}
	}
	if count != e.cache[0].Count {
		return nil, fmt.Errorf("%d items streamed, %d encoded: %w", count, e.cache[0].Count, ErrItems)
	}
	return out, nil
}

// Fingerprint is a root fingerprint of a set under a key: equal sets give
// equal fingerprints; it reveals nothing without the key.
type Fingerprint [16]byte

// Fingerprint summarises the set in 16 bytes: a hash, keyed, of symbol 0
// (every id's XOR, every keyed hash's XOR, the count). Peers compare it before
// streaming symbols. Accidental collisions are negligible; a member who holds
// the key could grind ids to collide it, as with any additive fingerprint, so
// periodic range-based reconciliation still runs.
func (e *Encoder) Fingerprint() Fingerprint {
	s := &e.cache[0]
	h := sha256.New()
	h.Write([]byte("aura/riblt/root/v1\x00"))
	h.Write(e.key[:])
	var buf [48]byte
	copy(buf[:32], s.Sum[:])
	binary.LittleEndian.PutUint64(buf[32:], s.Hash)
	binary.LittleEndian.PutUint64(buf[40:], uint64(s.Count))
	h.Write(buf[:])
	var f Fingerprint
	copy(f[:], h.Sum(nil))
	return f
}
