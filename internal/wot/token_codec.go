package wot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/aura-p2p/aura/internal/core"
)

// Token encoding, integers big-endian:
//
//	token  = version(1)=1 count(1)=1..8 (body sig(64))*count
//	body   = version(1)=1 index(1) prev(32)
//	         [issuer(32) epoch(8)]        root (index 0) only
//	         holder(32) scope not_after(8) nonce(16)
//	         ncaps(1) (len(1) name)*ncaps names strictly increasing
//	scope  = 0 (any) | kind(1)=1|2 id(32)
//
// A block's id is TaggedHash(TagCapBlock, body) and its key signs
// sigContext ‖ id. The decoder accepts exactly the bytes the encoder
// produces, so a token has one encoding and its hash is stable.
const (
	tokenVersion = 1
	blockVersion = 1
	scopeAny     = 0
	// MaxTokenBytes bounds an encoded token: eight blocks of 64 names of
	// 64 bytes fit.
	MaxTokenBytes = 2 + MaxTokenDepth*(blockFixedMax+ed25519SigLen+1+MaxCapabilityNames*(1+MaxCapabilityLen))
	blockFixedMax = 1 + 1 + 32 + 32 + 8 + 32 + 33 + 8 + 16
	ed25519SigLen = 64
)

func appendBody(b []byte, blk *Block) []byte {
	b = append(b, blockVersion, byte(blk.Index))
	b = append(b, blk.Prev[:]...)
	if blk.Index == 0 {
		b = append(b, blk.Issuer[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(blk.Epoch))
	}
	b = append(b, blk.Holder[:]...)
	if ns, ok := blk.Scope.Namespace(); ok {
		b = append(b, byte(ns.Kind))
		b = append(b, ns.ID[:]...)
	} else {
		b = append(b, scopeAny)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(blk.NotAfter))
	b = append(b, blk.Nonce[:]...)
	b = append(b, byte(len(blk.Caps.names)))
	for _, n := range blk.Caps.names {
		b = append(b, byte(len(n)))
		b = append(b, n...)
	}
	return b
}

func encodeToken(blocks []Block) []byte {
	b := []byte{tokenVersion, byte(len(blocks))}
	for i := range blocks {
		b = appendBody(b, &blocks[i])
		b = append(b, blocks[i].Sig[:]...)
	}
	return b
}

// reader consumes a byte slice; the first short read sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b)-r.off < n {
		r.err = fmt.Errorf("truncated at byte %d (want %d more)", r.off, n)
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) byte() byte {
	if s := r.take(1); s != nil {
		return s[0]
	}
	return 0
}

func (r *reader) u64() uint64 {
	if s := r.take(8); s != nil {
		return binary.BigEndian.Uint64(s)
	}
	return 0
}

// DecodeToken parses a token, refusing anything but the canonical encoding
// of a structurally sound chain. It checks no signature: that is Verifier's.
func DecodeToken(b []byte) (*Token, error) {
	if len(b) > MaxTokenBytes {
		return nil, fmt.Errorf("token of %d bytes, at most %d: %w", len(b), MaxTokenBytes, ErrTokenMalformed)
	}
	if len(b) < 2 {
		return nil, fmt.Errorf("token of %d bytes: %w", len(b), ErrTokenMalformed)
	}
	if b[0] != tokenVersion {
		return nil, fmt.Errorf("token version %d: %w", b[0], ErrTokenMalformed)
	}
	count := int(b[1])
	if count == 0 {
		return nil, fmt.Errorf("token without blocks: %w", ErrTokenMalformed)
	}
	if count > MaxTokenDepth {
		return nil, fmt.Errorf("token of %d blocks, at most %d: %w", count, MaxTokenDepth, ErrTokenDepth)
	}
	r := &reader{b: b, off: 2}
	blocks := make([]Block, count)
	for i := range blocks {
		start := r.off
		if err := decodeBlock(r, &blocks[i], i); err != nil {
			return nil, fmt.Errorf("token block %d: %w: %w", i, err, ErrTokenMalformed)
		}
		blocks[i].ID = core.TaggedHash(TagCapBlock, b[start:r.off])
		copy(blocks[i].Sig[:], r.take(ed25519SigLen))
		if r.err != nil {
			return nil, fmt.Errorf("token block %d signature: %w: %w", i, r.err, ErrTokenMalformed)
		}
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("token: %d trailing bytes: %w", len(b)-r.off, ErrTokenMalformed)
	}
	t := &Token{blocks: blocks, raw: bytes.Clone(b)}
	return t, nil
}

func decodeBlock(r *reader, blk *Block, i int) error {
	if v := r.byte(); r.err == nil && v != blockVersion {
		return fmt.Errorf("version %d", v)
	}
	if idx := int(r.byte()); r.err == nil && idx != i {
		return fmt.Errorf("says it is block %d", idx)
	}
	blk.Index = i
	copy(blk.Prev[:], r.take(32))
	if i == 0 {
		if r.err == nil && !blk.Prev.IsZero() {
			return fmt.Errorf("root names a previous block")
		}
		copy(blk.Issuer[:], r.take(32))
		blk.Epoch = core.Epoch(r.u64())
	}
	copy(blk.Holder[:], r.take(32))
	switch kind := r.byte(); {
	case r.err != nil:
	case kind == scopeAny:
	case core.NamespaceKind(kind) == core.NamespaceAuthority || core.NamespaceKind(kind) == core.NamespaceContext:
		ns := core.Namespace{Kind: core.NamespaceKind(kind)}
		copy(ns.ID[:], r.take(32))
		blk.Scope = Scope{ns: ns}
	default:
		return fmt.Errorf("scope kind %d", kind)
	}
	na := r.u64()
	if r.err == nil && (na == 0 || na > math.MaxInt64) {
		return fmt.Errorf("not-after %d", na)
	}
	blk.NotAfter = int64(na)
	copy(blk.Nonce[:], r.take(16))
	n := int(r.byte())
	if r.err == nil && n > MaxCapabilityNames {
		return fmt.Errorf("%d capabilities, at most %d", n, MaxCapabilityNames)
	}
	var names []string
	for j := 0; j < n && r.err == nil; j++ {
		name := string(r.take(int(r.byte())))
		if r.err != nil {
			break
		}
		if err := ValidateCapability(name); err != nil {
			return err
		}
		if j > 0 && name <= names[j-1] {
			return fmt.Errorf("capabilities not in strictly increasing order at %q", name)
		}
		names = append(names, name)
	}
	blk.Caps = Capabilities{names: names}
	return r.err
}
