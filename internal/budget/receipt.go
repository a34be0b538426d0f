package budget

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/transport"
)

// Tags of this package's hashes and signatures.
const (
	// TagReceipt: a receipt's hash, over its unsigned encoding. The hash is
	// what the next receipt's Prev names and what the device signs.
	TagReceipt core.Tag = "aura/receipt/v1"
	// tagReceiptSig prefixes the signed message, so a receipt signature can
	// never be mistaken for a device-key signature over anything else.
	tagReceiptSig = "aura/receipt/sig/v1"
)

const (
	// receiptVersion 2 numbers epochs in the protocol's EpochLength and names
	// the sender's budget period. Version 1 numbered epochs in units of the
	// sender's local setting; such receipts are still decoded, for the audit
	// rings of stores from before, but never accepted from a peer.
	receiptVersion   = 2
	receiptVersionV1 = 1
	// unsignedLen: version(1) context(32) src(32) dst(32) epoch(8) period(4)
	// cost(8) nonce(8) prev(32).
	unsignedLen   = 1 + 32 + 32 + 32 + 8 + 4 + 8 + 8 + 32
	unsignedLenV1 = unsignedLen - 4
	// ReceiptSize is the length of every encoded version 2 receipt.
	ReceiptSize   = unsignedLen + ed25519.SignatureSize
	receiptSizeV1 = unsignedLenV1 + ed25519.SignatureSize
)

// Receipt is a sender's signed proof that it paid Cost from its (Context,
// Dst) flow budget in Epoch. Receipts of one (context, src, dst, epoch) form a
// hash chain: Nonce counts up from 1 and Prev is the hash of the previous
// receipt (zero for nonce 1), so the receiver detects replays, gaps and forks,
// and the hash of the last receipt commits to the whole epoch's chain.
//
// Encoding (fixed length ReceiptSize, integers big-endian):
//
//	version(1)=2 ‖ context(32) ‖ src(32) ‖ dst(32) ‖ epoch(8) ‖ period(4) ‖
//	cost(8) ‖ nonce(8) ‖ prev(32) ‖ sig(64)
//
// Hash = TaggedHash(TagReceipt, encoding without sig); Sig is src's Ed25519
// signature over "aura/receipt/sig/v1" ‖ 0x00 ‖ Hash.
//
// A version 1 receipt (no period field, epoch in the sender's own units) from
// a store of before decodes with Period 0 and re-encodes as version 1.
type Receipt struct {
	Context core.ContextID
	Src     core.DeviceID
	Dst     core.DeviceID
	// Epoch is the protocol epoch (EpochLength) the cost was paid in.
	Epoch core.Epoch
	// Period is the sender's budget period in epochs: Cost counts against
	// the sender's spend of the period of that many epochs holding Epoch.
	// 0 only in a version 1 receipt.
	Period uint32
	Cost   uint64
	Nonce  uint64
	Prev   core.Hash
	Sig    []byte

	// cumulative is, on a receipt Charge made, what its chain has paid
	// through it: what a checkpoint of it says.
	cumulative uint64
}

func (r *Receipt) appendUnsigned(b []byte) []byte {
	if r.Period == 0 {
		b = append(b, receiptVersionV1)
	} else {
		b = append(b, receiptVersion)
	}
	b = append(b, r.Context[:]...)
	b = append(b, r.Src[:]...)
	b = append(b, r.Dst[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Epoch))
	if r.Period != 0 {
		b = binary.BigEndian.AppendUint32(b, r.Period)
	}
	b = binary.BigEndian.AppendUint64(b, r.Cost)
	b = binary.BigEndian.AppendUint64(b, r.Nonce)
	return append(b, r.Prev[:]...)
}

// Encode returns the canonical encoding. A receipt whose Sig is not 64 bytes
// (unsigned) encodes a zero signature, which never verifies.
func (r *Receipt) Encode() []byte {
	b := r.appendUnsigned(make([]byte, 0, ReceiptSize))
	var sig [ed25519.SignatureSize]byte
	if len(r.Sig) == len(sig) {
		copy(sig[:], r.Sig)
	}
	return append(b, sig[:]...)
}

// Hash is the receipt's chain hash; it does not cover the signature, so it
// is fixed before signing and immune to signature malleability.
func (r *Receipt) Hash() core.Hash {
	var buf [unsignedLen]byte
	return core.TaggedHash(TagReceipt, r.appendUnsigned(buf[:0]))
}

func signingBytes(h core.Hash) []byte {
	b := make([]byte, 0, len(tagReceiptSig)+1+len(h))
	b = append(b, tagReceiptSig...)
	b = append(b, 0)
	return append(b, h[:]...)
}

// check is the structural validity every receipt must have, signed or not.
func (r *Receipt) check() error {
	switch {
	case r.Nonce == 0:
		return fmt.Errorf("nonce 0 (nonces start at 1): %w", ErrMalformed)
	case r.Nonce == 1 && !r.Prev.IsZero():
		return fmt.Errorf("first receipt of a chain with a prev: %w", ErrMalformed)
	case r.Nonce > 1 && r.Prev.IsZero():
		return fmt.Errorf("receipt %d without a prev: %w", r.Nonce, ErrMalformed)
	case r.Src == r.Dst:
		return fmt.Errorf("receipt from a device to itself: %w", ErrMalformed)
	case r.Period > maxPeriodEpochs:
		return fmt.Errorf("budget period of %d epochs, at most %d: %w", r.Period, maxPeriodEpochs, ErrMalformed)
	}
	return nil
}

// SealFor returns r, a receipt Charge made, as an envelope carries it:
// signed whole for a peer on an envelope protocol before
// transport.ProtocolEnvelope4 (compact false); else compact, with a signed
// checkpoint of the chain through r on every CheckpointEvery-th receipt and
// on the first one checkpointPause after the key's last checkpoint (so that
// a slow chain is not left unsigned for long, and a chain's first receipt
// after a restart carries one). The transport seals a chain's receipts in
// nonce order.
func (l *Ledger) SealFor(r *Receipt, compact bool) ([]byte, error) {
	if !compact {
		signed := *r
		if err := signed.sign(l.signer); err != nil {
			return nil, err
		}
		return signed.Encode(), nil
	}
	sk := l.sendFor(Key{Context: r.Context, Peer: r.Dst})
	now := l.clock.Now()
	sk.mu.Lock()
	checkpoint := r.Nonce%transport.CheckpointEvery == 0 || now.Sub(sk.checkpointed) >= checkpointPause
	if checkpoint {
		sk.checkpointed = now
	}
	sk.mu.Unlock()
	if !checkpoint {
		return encodeCompact(r, nil), nil
	}
	cp := checkpointOf(r, r.cumulative)
	if err := signCheckpoint(l.signer, cp); err != nil {
		return nil, err
	}
	return encodeCompact(r, cp), nil
}

// checkpointPause: a chain's receipt sealed this long after its key's last
// checkpoint carries another.
const checkpointPause = 5 * time.Second

// sign fills Sig as signer, which must be Src.
func (r *Receipt) sign(signer journal.Signer) error {
	if signer.DeviceID() != r.Src {
		return fmt.Errorf("signer %s is not the receipt's src %s: %w", signer.DeviceID(), r.Src, core.ErrInvalidArgument)
	}
	if r.Period == 0 {
		return fmt.Errorf("receipt without a budget period: %w", core.ErrInvalidArgument)
	}
	if err := r.check(); err != nil {
		return err
	}
	r.Sig = signer.Sign(signingBytes(r.Hash()))
	return nil
}

// Verify checks the receipt's structure and Src's signature. It says nothing
// about the chain, the epoch or the limit; Ledger.Accept checks those.
func (r *Receipt) Verify() error {
	if err := r.check(); err != nil {
		return err
	}
	if len(r.Sig) != ed25519.SignatureSize || !ed25519.Verify(r.Src.PublicKey(), signingBytes(r.Hash()), r.Sig) {
		return fmt.Errorf("receipt %d from %s: %w", r.Nonce, r.Src, ErrBadSignature)
	}
	return nil
}

// DecodeReceipt parses a receipt from the network or the disk, accepting
// exactly the canonical encoding of version 2, or of version 1 (which only
// old audit rings hold; Ledger.Accept refuses it). It checks structure, not
// the signature. The result does not alias b.
func DecodeReceipt(b []byte) (*Receipt, error) {
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("empty receipt: %w", ErrMalformed)
	case b[0] == receiptVersion && len(b) != ReceiptSize, b[0] == receiptVersionV1 && len(b) != receiptSizeV1:
		return nil, fmt.Errorf("version %d receipt of %d bytes: %w", b[0], len(b), ErrMalformed)
	case b[0] != receiptVersion && b[0] != receiptVersionV1:
		return nil, fmt.Errorf("version %d unknown: %w", b[0], ErrMalformed)
	}
	r := &Receipt{}
	off := 1
	off += copy(r.Context[:], b[off:])
	off += copy(r.Src[:], b[off:])
	off += copy(r.Dst[:], b[off:])
	r.Epoch = core.Epoch(binary.BigEndian.Uint64(b[off:]))
	off += 8
	if b[0] == receiptVersion {
		r.Period = binary.BigEndian.Uint32(b[off:])
		off += 4
		if r.Period == 0 {
			return nil, fmt.Errorf("budget period 0: %w", ErrMalformed)
		}
	}
	r.Cost = binary.BigEndian.Uint64(b[off:])
	r.Nonce = binary.BigEndian.Uint64(b[off+8:])
	off += 16
	off += copy(r.Prev[:], b[off:])
	r.Sig = append([]byte(nil), b[off:]...)
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}
