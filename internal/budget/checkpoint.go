package budget

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/transport"
)

// Checkpointed receipts (envelope protocol 4). Each message's authenticity
// already comes from the Noise channel it arrives on, so a receipt travels
// unsigned: the receiver rebuilds it from the envelope and the compact
// receipt (period and prev), checks the chain and the limit as before, and
// stores it. What a signature per receipt gave beyond that, evidence a third
// party can verify, a checkpoint now gives for a whole run of receipts: the
// sender signs its chain head (nonce, cumulative cost, head hash) every
// transport.CheckpointEvery receipts, on the first frame of a chain on each
// new stream, and after a pause; the receiver verifies it against the chain
// it received and keeps the latest one per chain. A sender that runs
// CheckpointEvery receipts past its last checkpoint is refused
// (ErrCheckpointMissing), and one whose checkpoint does not match what it
// sent (ErrCheckpoint) too.

const (
	// tagCheckpointSig prefixes a checkpoint's signed message, so that it
	// can never be taken for a device signature over anything else.
	tagCheckpointSig  = "aura/checkpoint/sig/v1"
	checkpointVersion = 1
	// checkpointUnsignedLen: version(1) context(32) src(32) dst(32) epoch(8)
	// period(4) nonce(8) cumulative(8) head(32).
	checkpointUnsignedLen = 1 + 32 + 32 + 32 + 8 + 4 + 8 + 8 + 32
	// CheckpointSize is the length of an encoded checkpoint.
	CheckpointSize = checkpointUnsignedLen + ed25519.SignatureSize

	// compactVersion is the first byte of a compact receipt; the signed
	// receipt's is 1 or 2, so the two never collide.
	compactVersion = 3
	// compactLen: version(1) period(4) prev(32) has_checkpoint(1).
	compactLen = 1 + 4 + 32 + 1
	// compactCheckpointLen adds the checkpoint's cumulative cost and
	// signature; everything else in it is the receipt's.
	compactCheckpointLen = compactLen + 8 + ed25519.SignatureSize
)

// Checkpoint errors, counted against the sender like the others.
var (
	// ErrCheckpoint: a checkpoint that does not verify or does not match
	// the chain it came with.
	ErrCheckpoint = fmt.Errorf("receipt checkpoint does not match the chain: %w", core.ErrUnauthenticated)
	// ErrCheckpointMissing: a sender ran transport.CheckpointEvery
	// receipts past its last checkpoint without another.
	ErrCheckpointMissing = fmt.Errorf("receipt checkpoint missing: %w", core.ErrFailedPrecondition)
)

// Checkpoint is a sender's signature over the head of one receipt chain:
// through receipt Nonce, whose hash is Head, it paid Cumulative in all. The
// hash chain ties every receipt before Nonce to it.
type Checkpoint struct {
	Context    core.ContextID
	Src        core.DeviceID
	Dst        core.DeviceID
	Epoch      core.Epoch
	Period     uint32
	Nonce      uint64
	Cumulative uint64
	Head       core.Hash
	Sig        []byte
}

func (c *Checkpoint) appendUnsigned(b []byte) []byte {
	b = append(b, checkpointVersion)
	b = append(b, c.Context[:]...)
	b = append(b, c.Src[:]...)
	b = append(b, c.Dst[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Epoch))
	b = binary.BigEndian.AppendUint32(b, c.Period)
	b = binary.BigEndian.AppendUint64(b, c.Nonce)
	b = binary.BigEndian.AppendUint64(b, c.Cumulative)
	return append(b, c.Head[:]...)
}

func (c *Checkpoint) signingBytes() []byte {
	b := make([]byte, 0, len(tagCheckpointSig)+1+checkpointUnsignedLen)
	b = append(b, tagCheckpointSig...)
	b = append(b, 0)
	return c.appendUnsigned(b)
}

// Encode returns the canonical encoding (a zero signature if unsigned).
func (c *Checkpoint) Encode() []byte {
	b := c.appendUnsigned(make([]byte, 0, CheckpointSize))
	var sig [ed25519.SignatureSize]byte
	if len(c.Sig) == len(sig) {
		copy(sig[:], c.Sig)
	}
	return append(b, sig[:]...)
}

// Verify checks Src's signature; anyone holding the checkpoint can.
func (c *Checkpoint) Verify() error {
	if len(c.Sig) != ed25519.SignatureSize || !ed25519.Verify(c.Src.PublicKey(), c.signingBytes(), c.Sig) {
		return fmt.Errorf("checkpoint at nonce %d from %s: %w", c.Nonce, c.Src, ErrCheckpoint)
	}
	return nil
}

// DecodeCheckpoint parses a stored checkpoint. It checks structure, not the
// signature.
func DecodeCheckpoint(b []byte) (*Checkpoint, error) {
	if len(b) != CheckpointSize || b[0] != checkpointVersion {
		return nil, fmt.Errorf("checkpoint of %d bytes: %w", len(b), ErrMalformed)
	}
	c := &Checkpoint{}
	off := 1
	off += copy(c.Context[:], b[off:])
	off += copy(c.Src[:], b[off:])
	off += copy(c.Dst[:], b[off:])
	c.Epoch = core.Epoch(binary.BigEndian.Uint64(b[off:]))
	c.Period = binary.BigEndian.Uint32(b[off+8:])
	c.Nonce = binary.BigEndian.Uint64(b[off+12:])
	c.Cumulative = binary.BigEndian.Uint64(b[off+20:])
	off += 28
	off += copy(c.Head[:], b[off:])
	c.Sig = append([]byte(nil), b[off:]...)
	if c.Nonce == 0 || c.Period == 0 {
		return nil, fmt.Errorf("checkpoint at nonce %d, period %d: %w", c.Nonce, c.Period, ErrMalformed)
	}
	return c, nil
}

// checkpointOf is the checkpoint of r's chain through r, unsigned.
func checkpointOf(r *Receipt, cumulative uint64) *Checkpoint {
	return &Checkpoint{Context: r.Context, Src: r.Src, Dst: r.Dst, Epoch: r.Epoch, Period: r.Period, Nonce: r.Nonce, Cumulative: cumulative, Head: r.Hash()}
}

// encodeCompact is r as envelope protocol 4 carries it: the fields the
// envelope does not (period, prev), and cp's cumulative cost and signature
// when cp is set.
func encodeCompact(r *Receipt, cp *Checkpoint) []byte {
	b := make([]byte, 0, compactCheckpointLen)
	b = append(b, compactVersion)
	b = binary.BigEndian.AppendUint32(b, r.Period)
	b = append(b, r.Prev[:]...)
	if cp == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, cp.Cumulative)
	return append(b, cp.Sig...)
}

// decodeCompact rebuilds the receipt an envelope of protocol 4 carries, and
// its checkpoint if it has one (unverified: Accept checks it against the
// chain).
func decodeCompact(e *transport.Envelope) (*Receipt, *Checkpoint, error) {
	b := e.Receipt
	if len(b) < compactLen || b[0] != compactVersion {
		return nil, nil, fmt.Errorf("compact receipt of %d bytes: %w", len(b), ErrMalformed)
	}
	r := &Receipt{Context: e.Context, Src: e.Src, Dst: e.Dst, Epoch: e.Epoch, Cost: e.Cost, Nonce: e.Seq}
	r.Period = binary.BigEndian.Uint32(b[1:])
	copy(r.Prev[:], b[5:37])
	if r.Period == 0 {
		return nil, nil, fmt.Errorf("budget period 0: %w", ErrMalformed)
	}
	if err := r.check(); err != nil {
		return nil, nil, err
	}
	switch {
	case b[37] == 0 && len(b) == compactLen:
		return r, nil, nil
	case b[37] == 1 && len(b) == compactCheckpointLen:
		cp := checkpointOf(r, binary.BigEndian.Uint64(b[38:]))
		cp.Sig = append([]byte(nil), b[46:]...)
		return r, cp, nil
	}
	return nil, nil, fmt.Errorf("compact receipt of %d bytes, checkpoint flag %d: %w", len(b), b[37], ErrMalformed)
}

// signCheckpoint signs cp as signer, which must be its Src.
func signCheckpoint(signer journal.Signer, cp *Checkpoint) error {
	if signer.DeviceID() != cp.Src {
		return fmt.Errorf("signer %s is not the checkpoint's src %s: %w", signer.DeviceID(), cp.Src, core.ErrInvalidArgument)
	}
	cp.Sig = signer.Sign(cp.signingBytes())
	return nil
}
