package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/aura-p2p/aura/internal/core"
)

// Limits on what a peer can make us read.
const (
	MaxPayload       = 64 << 10
	MaxTypeLen       = 64
	MaxCapabilityLen = 64
	// MaxTokenLen bounds a capability token carried in an envelope (a
	// delegation chain of at most 8 blocks fits).
	MaxTokenLen = 8 << 10
	maxReceipt  = 512
	MaxFrame    = MaxPayload + maxReceipt + MaxTokenLen + 512
)

// Envelope versions. Version 2 adds the capability field, version 3 the
// capability token that proves it. Each frame is written at the lowest
// version that carries what it has, so a frame without a capability is still
// version 1, byte for byte as before: peers built earlier keep reading what
// they can, and refuse the rest as "envelope version N" rather than as
// garbage.
//
// Version 4 is what a ProtocolEnvelope4 stream carries: no source or
// destination (the stream's authenticated peer and this device are both, and
// the receiver required exactly that of every earlier version), and the
// capability and token each present only when set. Its frames are written
// only to peers that agreed to that protocol.
const (
	envelopeV1 = 1
	envelopeV2 = 2
	envelopeV3 = 3
	envelopeV4 = 4
)

// Envelope is one message on the wire. The receipt proves the sender paid
// for it; the fields it repeats (context, src, dst, epoch, cost, seq) must
// agree with the receipt.
type Envelope struct {
	Context core.ContextID
	Src     core.DeviceID
	Dst     core.DeviceID
	Epoch   core.Epoch
	// Seq is the message's number in its (context, src, dst, epoch) chain:
	// the receipt's nonce.
	Seq  uint64
	Cost uint64
	// Protocol is the versioned protocol the message belongs to
	// ("/aura/ping/1"); every protocol shares one stream per peer, so that a
	// receipt chain reaches the receiver in order.
	Protocol string
	Type     string
	// Capability is what the sender claims to hold for the message ("" for
	// none): a capability name now, a capability token once the web of trust
	// brings them.
	Capability string
	// Token, if set, is a capability token (internal/wot) that grants
	// Capability to Src; it needs a Capability.
	Token   []byte
	Receipt []byte
	Payload []byte

	// v4 is set on an envelope decoded from version 4, which has no Src or
	// Dst of its own.
	v4 bool
}

// V4 reports whether the envelope was decoded from version 4, whose Src and
// Dst are the stream's.
func (e *Envelope) V4() bool { return e.v4 }

// Field numbers, written in this order: every field up to fPayload always,
// fCapability exactly when the envelope has a capability (version 2).
const (
	fVersion protowire.Number = iota + 1
	fContext
	fSrc
	fDst
	fEpoch
	fSeq
	fCost
	fProtocol
	fType
	fReceipt
	fPayload
	fCapability
	fToken
)

// ErrBadFrame wraps every decoding failure of peer bytes.
var ErrBadFrame = fmt.Errorf("bad frame: %w", core.ErrInvalidArgument)

// EncodeV4 returns the canonical version 4 encoding: Src and Dst are left
// out, the stream names them.
func (e *Envelope) EncodeV4() []byte { return e.encode(envelopeV4) }

// Encode returns the canonical encoding: version 4 for an envelope decoded
// from it, else the lowest of versions 1 to 3 that carries what it has.
func (e *Envelope) Encode() []byte {
	if e.v4 {
		return e.EncodeV4()
	}
	switch {
	case len(e.Token) > 0:
		return e.encode(envelopeV3)
	case e.Capability != "":
		return e.encode(envelopeV2)
	}
	return e.encode(envelopeV1)
}

func (e *Envelope) encode(ver uint64) []byte {
	b := make([]byte, 0, 160+len(e.Type)+len(e.Capability)+len(e.Token)+len(e.Receipt)+len(e.Payload))
	b = protowire.AppendTag(b, fVersion, protowire.VarintType)
	b = protowire.AppendVarint(b, ver)
	b = appendBytes(b, fContext, e.Context[:])
	if ver != envelopeV4 {
		b = appendBytes(b, fSrc, e.Src[:])
		b = appendBytes(b, fDst, e.Dst[:])
	}
	b = protowire.AppendTag(b, fEpoch, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(e.Epoch))
	b = protowire.AppendTag(b, fSeq, protowire.VarintType)
	b = protowire.AppendVarint(b, e.Seq)
	b = protowire.AppendTag(b, fCost, protowire.VarintType)
	b = protowire.AppendVarint(b, e.Cost)
	b = appendBytes(b, fProtocol, []byte(e.Protocol))
	b = appendBytes(b, fType, []byte(e.Type))
	b = appendBytes(b, fReceipt, e.Receipt)
	b = appendBytes(b, fPayload, e.Payload)
	// Versions 2 and 3 always end with the capability field (version 3's
	// token needs one); version 4 writes it only when set.
	if e.Capability != "" || (ver != envelopeV4 && ver != envelopeV1) {
		b = appendBytes(b, fCapability, []byte(e.Capability))
	}
	if len(e.Token) > 0 {
		b = appendBytes(b, fToken, e.Token)
	}
	return b
}

func appendBytes(b []byte, n protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// DecodeEnvelope parses an envelope, accepting only the canonical encoding.
// The result aliases b. A version 4 envelope has no Src or Dst: the caller
// fills them in from the stream (V4 reports it).
func DecodeEnvelope(b []byte) (*Envelope, error) {
	bad := func(format string, args ...any) (*Envelope, error) {
		return nil, fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrBadFrame)
	}
	var e Envelope
	off := 0
	last := fPayload
	for want := fVersion; want <= last; want++ {
		if e.v4 && (want == fSrc || want == fDst) {
			continue
		}
		if e.v4 && want > fPayload && off == len(b) {
			// The capability and the token are optional in version 4; a
			// token needs a capability (Send refuses one without), so a
			// token alone is out of order and refused.
			break
		}
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 || n != protowire.SizeTag(num) || num != want {
			return bad("field %d missing or out of order", want)
		}
		off += n
		if want == fVersion || want == fEpoch || want == fSeq || want == fCost {
			if typ != protowire.VarintType {
				return bad("field %d: wrong wire type", num)
			}
			v, n := protowire.ConsumeVarint(b[off:])
			if n < 0 || n != protowire.SizeVarint(v) {
				return bad("field %d: bad varint", num)
			}
			off += n
			switch want {
			case fVersion:
				switch v {
				case envelopeV1:
				case envelopeV2:
					last = fCapability
				case envelopeV3:
					last = fToken
				case envelopeV4:
					e.v4 = true
					last = fToken
				default:
					return bad("envelope version %d", v)
				}
			case fEpoch:
				e.Epoch = core.Epoch(v)
			case fSeq:
				e.Seq = v
			case fCost:
				e.Cost = v
			}
			continue
		}
		if typ != protowire.BytesType {
			return bad("field %d: wrong wire type", num)
		}
		v, n := protowire.ConsumeBytes(b[off:])
		if n < 0 {
			return bad("field %d: truncated", num)
		}
		if l, _ := protowire.ConsumeVarint(b[off:]); protowire.SizeVarint(l) != n-len(v) {
			return bad("field %d: overlong length", num)
		}
		off += n
		switch want {
		case fContext, fSrc, fDst:
			if len(v) != 32 {
				return bad("field %d: %d bytes, want 32", num, len(v))
			}
			switch want {
			case fContext:
				copy(e.Context[:], v)
			case fSrc:
				copy(e.Src[:], v)
			case fDst:
				copy(e.Dst[:], v)
			}
		case fProtocol:
			if len(v) == 0 || len(v) > MaxTypeLen {
				return bad("protocol of %d bytes", len(v))
			}
			e.Protocol = string(v)
		case fType:
			if len(v) == 0 || len(v) > MaxTypeLen {
				return bad("message type of %d bytes", len(v))
			}
			e.Type = string(v)
		case fReceipt:
			if len(v) > maxReceipt {
				return bad("receipt of %d bytes", len(v))
			}
			e.Receipt = v
		case fPayload:
			if len(v) > MaxPayload {
				return bad("payload of %d bytes", len(v))
			}
			e.Payload = v
		case fCapability:
			// Version 2 exists for the capability: an empty one is written
			// as version 1, so only a non-empty one is canonical here.
			if len(v) == 0 || len(v) > MaxCapabilityLen {
				return bad("capability of %d bytes", len(v))
			}
			e.Capability = string(v)
		case fToken:
			// Version 3 exists for the token: only a non-empty one is
			// canonical.
			if len(v) == 0 || len(v) > MaxTokenLen {
				return bad("capability token of %d bytes", len(v))
			}
			e.Token = v
		}
	}
	if off != len(b) {
		return bad("%d trailing bytes", len(b)-off)
	}
	return &e, nil
}

// writeFrame writes a length-prefixed frame.
func writeFrame(w io.Writer, frame []byte) error {
	if len(frame) > MaxFrame {
		return fmt.Errorf("frame of %d bytes exceeds %d: %w", len(frame), MaxFrame, core.ErrInvalidArgument)
	}
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(frame)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(frame)
	return err
}

// errFrameTooLarge: the peer announced more than MaxFrame; the stream cannot be
// resynchronised and is closed.
var errFrameTooLarge = fmt.Errorf("frame larger than %d bytes: %w", MaxFrame, ErrBadFrame)

// readFrame reads one frame into buf (grown as needed) and returns it.
func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	l, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("frame length: %w: %w", err, ErrBadFrame)
	}
	if l > MaxFrame {
		return nil, errFrameTooLarge
	}
	if cap(buf) < int(l) {
		buf = make([]byte, l)
	}
	buf = buf[:l]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("frame body: %w", err)
	}
	return buf, nil
}
