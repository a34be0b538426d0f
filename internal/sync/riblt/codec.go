package riblt

import (
	"encoding/binary"
	"fmt"
)

const (
	// WireVersion is the first byte of an encoded Batch.
	WireVersion = 1
	// MaxBatchSymbols bounds one Batch (≈ 3 MiB encoded).
	MaxBatchSymbols = 1 << 16
	// MaxCount bounds a symbol's count on the wire: no namespace holds a
	// trillion facts, and a larger count can only be a lie.
	MaxCount = 1 << 40
	// minSymbolBytes: sum, hash and a one-byte count.
	minSymbolBytes = 32 + 8 + 1
)

// Batch is a run of consecutive symbols of one encoder's stream.
type Batch struct {
	Start   uint64   // index of Symbols[0]
	Symbols []Symbol // Count in [0, MaxCount]
}

// Wire format, version 1 (all integers canonical unsigned LEB128 varints):
//
//	version byte (1) | start | n | n × (sum [32] | hash uint64 LE | count)
//
// Exactly one encoding is accepted for each batch: non-minimal varints,
// trailing bytes, n > MaxBatchSymbols, start+n > 2^32-1, a count above
// MaxCount or a count of zero with a non-zero sum or hash are refused.

// AppendBatch appends b's encoding to dst. It refuses a batch ParseBatch
// would refuse.
func AppendBatch(dst []byte, b Batch) ([]byte, error) {
	if err := checkBatch(b.Start, uint64(len(b.Symbols))); err != nil {
		return dst, err
	}
	for i := range b.Symbols {
		if err := checkWireSymbol(&b.Symbols[i]); err != nil {
			return dst, fmt.Errorf("symbol %d: %w", b.Start+uint64(i), err)
		}
	}
	dst = append(dst, WireVersion)
	dst = binary.AppendUvarint(dst, b.Start)
	dst = binary.AppendUvarint(dst, uint64(len(b.Symbols)))
	for i := range b.Symbols {
		s := &b.Symbols[i]
		dst = append(dst, s.Sum[:]...)
		dst = binary.LittleEndian.AppendUint64(dst, s.Hash)
		dst = binary.AppendUvarint(dst, uint64(s.Count))
	}
	return dst, nil
}

// ParseBatch decodes one batch, strictly.
func ParseBatch(p []byte) (Batch, error) {
	if len(p) == 0 {
		return Batch{}, fmt.Errorf("empty: %w", ErrMalformed)
	}
	if p[0] != WireVersion {
		return Batch{}, fmt.Errorf("version %d, want %d: %w", p[0], WireVersion, ErrMalformed)
	}
	p = p[1:]
	start, p, err := readUvarint(p)
	if err != nil {
		return Batch{}, fmt.Errorf("start: %w", err)
	}
	n, p, err := readUvarint(p)
	if err != nil {
		return Batch{}, fmt.Errorf("length: %w", err)
	}
	if err := checkBatch(start, n); err != nil {
		return Batch{}, err
	}
	if n > uint64(len(p)/minSymbolBytes) {
		return Batch{}, fmt.Errorf("%d symbols cannot fit in %d bytes: %w", n, len(p), ErrMalformed)
	}
	b := Batch{Start: start, Symbols: make([]Symbol, n)}
	for i := range b.Symbols {
		s := &b.Symbols[i]
		if len(p) < 40 {
			return Batch{}, fmt.Errorf("symbol %d truncated: %w", start+uint64(i), ErrMalformed)
		}
		copy(s.Sum[:], p[:32])
		s.Hash = binary.LittleEndian.Uint64(p[32:40])
		var c uint64
		c, p, err = readUvarint(p[40:])
		if err != nil {
			return Batch{}, fmt.Errorf("symbol %d count: %w", start+uint64(i), err)
		}
		if c > MaxCount {
			return Batch{}, fmt.Errorf("symbol %d count %d above %d: %w", start+uint64(i), c, uint64(MaxCount), ErrMalformed)
		}
		s.Count = int64(c)
		if err := checkWireSymbol(s); err != nil {
			return Batch{}, fmt.Errorf("symbol %d: %w", start+uint64(i), err)
		}
	}
	if len(p) != 0 {
		return Batch{}, fmt.Errorf("%d trailing bytes: %w", len(p), ErrMalformed)
	}
	return b, nil
}

func checkBatch(start, n uint64) error {
	if n > MaxBatchSymbols {
		return fmt.Errorf("%d symbols, at most %d: %w", n, MaxBatchSymbols, ErrMalformed)
	}
	if start > indexLimit || n > indexLimit-start {
		return fmt.Errorf("symbols [%d, +%d) past the stream's end: %w", start, n, ErrMalformed)
	}
	return nil
}

// checkWireSymbol refuses what no encoder produces.
func checkWireSymbol(s *Symbol) error {
	if s.Count < 0 || s.Count > MaxCount {
		return fmt.Errorf("count %d not in [0, %d]: %w", s.Count, int64(MaxCount), ErrMalformed)
	}
	if s.Count == 0 && !s.IsZero() {
		return fmt.Errorf("count 0 with a non-zero sum or hash: %w", ErrMalformed)
	}
	return nil
}

// readUvarint reads a minimal-length uvarint, so every value has one encoding.
func readUvarint(p []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, p, fmt.Errorf("bad varint: %w", ErrMalformed)
	}
	if n > 1 && p[n-1] == 0 {
		return 0, p, fmt.Errorf("non-minimal varint: %w", ErrMalformed)
	}
	return v, p[n:], nil
}
