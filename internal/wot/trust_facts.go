package wot

import (
	"encoding/binary"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
)

// Fact type ids of the trust facts. The journal rejects unknown aura. types,
// so the node registers validators that call the decoders below.
const (
	// TypeTrustEdge is a TrustEdge, kept in the truster's authority namespace.
	TypeTrustEdge = "aura.trust.edge/v1"
	// TypeEndorsement is an Endorsement, kept in a relational context shared
	// with the contact that may see the edge.
	TypeEndorsement = "aura.trust.endorse/v1"
)

const (
	trustEdgeVersion   = 1
	endorsementVersion = 1
	trustEdgeLen       = 1 + 32 + 32 + 1 + 8
	endorsementLen     = 1 + 1 + trustEdgeLen
	endorseWithdrawn   = 1 // flag bit
)

// TrustEdge says that device From trusts device To at Level.
//
// Seq orders the statements From makes about To: the truster's device sets it
// (its Lamport clock when it made the statement is the natural choice), and
// the edge with the higher Seq wins wherever it is seen, whether in the
// truster's namespace or through any endorsement copy, since a copy carries
// the same Seq. Two statements with the same Seq and different levels can only
// come from a confused or hostile truster; the lower level wins then, so that
// equivocation never raises trust. See Newer.
type TrustEdge struct {
	From, To core.DeviceID
	Level    Level
	Seq      uint64
}

// Newer reports whether e supersedes old (same From and To assumed).
func (e TrustEdge) Newer(old TrustEdge) bool {
	return edgeNewer(e.Seq, e.Level, old.Seq, old.Level)
}

func edgeNewer(seq uint64, l Level, oldSeq uint64, oldL Level) bool {
	return seq > oldSeq || (seq == oldSeq && l < oldL)
}

// Validate refuses an edge that no truster can state: an unknown level or a
// device trusting itself.
func (e TrustEdge) Validate() error {
	if !e.Level.Valid() {
		return fmt.Errorf("trust edge: %s is not a trust level: %w", e.Level, core.ErrInvalidArgument)
	}
	if e.From == e.To {
		return fmt.Errorf("trust edge from device %s to itself: %w", e.From, core.ErrInvalidArgument)
	}
	return nil
}

// Encode: version(1)=1 from(32) to(32) level(1) seq(8, big-endian).
func (e TrustEdge) Encode() []byte {
	return e.appendTo(make([]byte, 0, trustEdgeLen))
}

func (e TrustEdge) appendTo(b []byte) []byte {
	b = append(b, trustEdgeVersion)
	b = append(b, e.From[:]...)
	b = append(b, e.To[:]...)
	b = append(b, byte(e.Level))
	return binary.BigEndian.AppendUint64(b, e.Seq)
}

// DecodeTrustEdge accepts exactly the encoding of a valid edge.
func DecodeTrustEdge(b []byte) (TrustEdge, error) {
	if len(b) != trustEdgeLen {
		return TrustEdge{}, fmt.Errorf("trust edge: %d bytes, want %d: %w", len(b), trustEdgeLen, core.ErrInvalidArgument)
	}
	if b[0] != trustEdgeVersion {
		return TrustEdge{}, fmt.Errorf("trust edge: unknown version %d: %w", b[0], core.ErrInvalidArgument)
	}
	var e TrustEdge
	copy(e.From[:], b[1:33])
	copy(e.To[:], b[33:65])
	e.Level = Level(b[65])
	e.Seq = binary.BigEndian.Uint64(b[66:])
	if err := e.Validate(); err != nil {
		return TrustEdge{}, err
	}
	return e, nil
}

// Endorsement shares a copy of one of the author's trust edges into a
// relational context, so that the contact on the other side may use it for
// transitive trust. Sharing is opt-in per contact (one endorsement per
// context). Withdrawn stops sharing: per (context, From, To) the endorsement
// whose Edge is Newer wins, and if it is withdrawn the contact no longer sees
// the edge through that context. The author must be Edge.From's authority; the
// node's validator checks that, this package does not know authorities.
type Endorsement struct {
	Edge      TrustEdge
	Withdrawn bool
}

// Encode: version(1)=1 flags(1: bit 0 withdrawn) edge(TrustEdge encoding).
func (n Endorsement) Encode() []byte {
	b := make([]byte, 0, endorsementLen)
	b = append(b, endorsementVersion)
	var flags byte
	if n.Withdrawn {
		flags |= endorseWithdrawn
	}
	b = append(b, flags)
	return n.Edge.appendTo(b)
}

// DecodeEndorsement accepts exactly the encoding of a valid endorsement:
// unknown flag bits are refused, not ignored.
func DecodeEndorsement(b []byte) (Endorsement, error) {
	if len(b) != endorsementLen {
		return Endorsement{}, fmt.Errorf("trust endorsement: %d bytes, want %d: %w", len(b), endorsementLen, core.ErrInvalidArgument)
	}
	if b[0] != endorsementVersion {
		return Endorsement{}, fmt.Errorf("trust endorsement: unknown version %d: %w", b[0], core.ErrInvalidArgument)
	}
	if b[1]&^endorseWithdrawn != 0 {
		return Endorsement{}, fmt.Errorf("trust endorsement: unknown flags %#x: %w", b[1], core.ErrInvalidArgument)
	}
	e, err := DecodeTrustEdge(b[2:])
	if err != nil {
		return Endorsement{}, fmt.Errorf("trust endorsement: %w", err)
	}
	return Endorsement{Edge: e, Withdrawn: b[1]&endorseWithdrawn != 0}, nil
}
