package budget

import (
	"encoding/binary"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Audit facts. Receipts themselves stay in a bounded ring; what the journal
// keeps for good is one summary per (context, peer, epoch) on the sending
// side and one leakage summary per (context, epoch). They go into the
// device's own authority namespace (Config.AuditNamespace): link contexts
// have no namespace of their own, and a device's spend is its account's
// business. The journal rejects unknown aura. types, so the daemon registers
// Validators with it.
const (
	TypeEpochSummary   = "aura.budget.epoch/v1"
	TypeLeakageSummary = "aura.budget.leakage/v1"
)

const summaryVersion = 1

// EpochSummary closes one receipt chain: what Src paid Dst in Context during
// Epoch. LastHash is the hash of the last receipt, which through the prev
// links commits to every receipt of the chain, so a retained receipt can be
// checked against the summary.
type EpochSummary struct {
	Context   core.ContextID
	Src, Dst  core.DeviceID
	Epoch     core.Epoch
	Count     uint64
	Total     uint64
	LastNonce uint64
	LastHash  core.Hash
}

const epochSummaryLen = 1 + 32 + 32 + 32 + 8 + 8 + 8 + 8 + 32

// Encode: version(1)=1 context(32) src(32) dst(32) epoch(8) count(8)
// total(8) last_nonce(8) last_hash(32), integers big-endian.
func (s *EpochSummary) Encode() []byte {
	b := make([]byte, 0, epochSummaryLen)
	b = append(b, summaryVersion)
	b = append(b, s.Context[:]...)
	b = append(b, s.Src[:]...)
	b = append(b, s.Dst[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Epoch))
	b = binary.BigEndian.AppendUint64(b, s.Count)
	b = binary.BigEndian.AppendUint64(b, s.Total)
	b = binary.BigEndian.AppendUint64(b, s.LastNonce)
	return append(b, s.LastHash[:]...)
}

// DecodeEpochSummary accepts exactly the canonical encoding of a consistent
// summary: at least one receipt, a gapless chain (count = last nonce), a
// head, and distinct src and dst.
func DecodeEpochSummary(b []byte) (*EpochSummary, error) {
	if len(b) != epochSummaryLen || b[0] != summaryVersion {
		return nil, fmt.Errorf("epoch summary of %d bytes: %w", len(b), core.ErrInvalidArgument)
	}
	s := &EpochSummary{}
	off := 1
	off += copy(s.Context[:], b[off:])
	off += copy(s.Src[:], b[off:])
	off += copy(s.Dst[:], b[off:])
	s.Epoch = core.Epoch(binary.BigEndian.Uint64(b[off:]))
	s.Count = binary.BigEndian.Uint64(b[off+8:])
	s.Total = binary.BigEndian.Uint64(b[off+16:])
	s.LastNonce = binary.BigEndian.Uint64(b[off+24:])
	copy(s.LastHash[:], b[off+32:])
	switch {
	case s.Count == 0 || s.Count != s.LastNonce:
		return nil, fmt.Errorf("epoch summary: %d receipts up to nonce %d: %w", s.Count, s.LastNonce, core.ErrInvalidArgument)
	case s.LastHash.IsZero():
		return nil, fmt.Errorf("epoch summary without a last hash: %w", core.ErrInvalidArgument)
	case s.Src == s.Dst:
		return nil, fmt.Errorf("epoch summary from a device to itself: %w", core.ErrInvalidArgument)
	}
	return s, nil
}

// LeakageSummary is the metadata leakage one device's sends caused in
// Context during Epoch, per observer class.
type LeakageSummary struct {
	Context  core.ContextID
	Epoch    core.Epoch
	Consumed core.Leakage
}

const leakageSummaryLen = 1 + 32 + 8 + 3*8

// Encode: version(1)=1 context(32) epoch(8) external(8) neighbor(8)
// in_group(8).
func (s *LeakageSummary) Encode() []byte {
	b := make([]byte, 0, leakageSummaryLen)
	b = append(b, summaryVersion)
	b = append(b, s.Context[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Epoch))
	for _, v := range s.Consumed {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// DecodeLeakageSummary accepts exactly the canonical encoding.
func DecodeLeakageSummary(b []byte) (*LeakageSummary, error) {
	if len(b) != leakageSummaryLen || b[0] != summaryVersion {
		return nil, fmt.Errorf("leakage summary of %d bytes: %w", len(b), core.ErrInvalidArgument)
	}
	s := &LeakageSummary{}
	copy(s.Context[:], b[1:])
	s.Epoch = core.Epoch(binary.BigEndian.Uint64(b[33:]))
	for i := range s.Consumed {
		s.Consumed[i] = binary.BigEndian.Uint64(b[41+8*i:])
	}
	return s, nil
}

// Validators returns the journal validators of this package's fact types.
// An epoch summary must be authored by the device that paid (its src).
func Validators() map[string]journal.Validator {
	return map[string]journal.Validator{
		TypeEpochSummary: func(f *journal.SignedFact) error {
			s, err := DecodeEpochSummary(f.Payload)
			if err != nil {
				return err
			}
			if s.Src != f.Author {
				return fmt.Errorf("epoch summary of %s authored by %s: %w", s.Src, f.Author, core.ErrPermissionDenied)
			}
			return nil
		},
		TypeLeakageSummary: func(f *journal.SignedFact) error {
			_, err := DecodeLeakageSummary(f.Payload)
			return err
		},
	}
}
