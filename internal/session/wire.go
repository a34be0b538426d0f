package session

import (
	"encoding/hex"
	"fmt"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/aura-p2p/aura/internal/core"
)

// Wire format of the session runtime. Everything travels on one transport
// protocol, ProtocolSession, as one of three message types; the payload is a
// protobuf-wire record written and read by hand (fields in number order,
// unknown fields refused), so that this package needs no generated code and
// a frame has exactly one encoding.
//
//	msg (TypeMsg): a protocol message
//	  1 session id (16 bytes)   2 label        3 from role   4 to role
//	  5 step (sender's count)   6 payload      7 header (first message to a device)
//	join (TypeJoin): the header alone, for a role whose first act is a send
//	  1 session id   7 header
//	abort (TypeAbort): the sender gave up on the session
//	  1 session id   3 from role   8 reason code   9 detail
//
//	header: 1 protocol name  2 protocol hash (32)  3 context (32, absent for
//	pairwise link contexts)  4 role entry (repeated, sorted by role: 1 role,
//	2 device)  5 choice (repeated)
const (
	ProtocolSession = "/aura/choreo/1"

	TypeMsg   = "choreo.msg"
	TypeJoin  = "choreo.join"
	TypeAbort = "choreo.abort"
)

// MessageTypes lists the transport message types the runtime sends, for the
// authorizer.
func MessageTypes() []string { return []string{TypeMsg, TypeJoin, TypeAbort} }

// Wire limits: anything larger is refused when decoding.
const (
	maxNameLen    = 128
	maxDetailLen  = 512
	maxWireRoles  = 64
	maxChoices    = 256
	sessionIDSize = 16
)

// SessionID names a session; the starter draws it at random.
type SessionID [sessionIDSize]byte

func (id SessionID) String() string { return hex.EncodeToString(id[:]) }

// ParseSessionID parses the hex form.
func ParseSessionID(s string) (SessionID, error) {
	var id SessionID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sessionIDSize {
		return id, fmt.Errorf("session id %q: want %d hex bytes: %w", s, sessionIDSize, core.ErrInvalidArgument)
	}
	copy(id[:], b)
	return id, nil
}

// header is what a device needs to join a session: which protocol (and that
// both sides mean the same text), who plays which role, where messages are
// charged, and the starter's choices.
type header struct {
	Protocol string
	Hash     core.Hash
	Context  core.ContextID // zero: each pair's link context
	Roles    map[string]core.DeviceID
	Choices  []string
}

func (h *header) equal(o *header) bool {
	if h.Protocol != o.Protocol || h.Hash != o.Hash || h.Context != o.Context || len(h.Roles) != len(o.Roles) || len(h.Choices) != len(o.Choices) {
		return false
	}
	for r, d := range h.Roles {
		if o.Roles[r] != d {
			return false
		}
	}
	for i := range h.Choices {
		if h.Choices[i] != o.Choices[i] {
			return false
		}
	}
	return true
}

// frame is one decoded runtime message of any type.
type frame struct {
	Session  SessionID
	Label    string
	From, To string
	Step     uint64
	Payload  []byte
	Header   *header
	Code     AbortCode
	Detail   string
}

const (
	fSession protowire.Number = 1 + iota
	fLabel
	fFrom
	fTo
	fStep
	fPayload
	fHeader
	fCode
	fDetail
)

const (
	hProtocol protowire.Number = 1 + iota
	hHash
	hContext
	hRole
	hChoice
)

func appendString(b []byte, n protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, n protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func (f *frame) encode() []byte {
	b := make([]byte, 0, 64+len(f.Payload))
	b = appendBytes(b, fSession, f.Session[:])
	b = appendString(b, fLabel, f.Label)
	b = appendString(b, fFrom, f.From)
	b = appendString(b, fTo, f.To)
	b = appendVarint(b, fStep, f.Step)
	b = appendBytes(b, fPayload, f.Payload)
	if f.Header != nil {
		b = appendBytes(b, fHeader, f.Header.encode())
	}
	b = appendVarint(b, fCode, uint64(f.Code))
	b = appendString(b, fDetail, f.Detail)
	return b
}

func (h *header) encode() []byte {
	var b []byte
	b = appendString(b, hProtocol, h.Protocol)
	b = appendBytes(b, hHash, h.Hash[:])
	if h.Context != (core.ContextID{}) {
		b = appendBytes(b, hContext, h.Context[:])
	}
	roles := make([]string, 0, len(h.Roles))
	for r := range h.Roles {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		d := h.Roles[r]
		var e []byte
		e = appendString(e, 1, r)
		e = appendBytes(e, 2, d[:])
		b = protowire.AppendTag(b, hRole, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	for _, c := range h.Choices {
		b = protowire.AppendTag(b, hChoice, protowire.BytesType)
		b = protowire.AppendString(b, c)
	}
	return b
}

var errBadFrame = fmt.Errorf("malformed session frame: %w", core.ErrInvalidArgument)

// fields walks a record, requiring field numbers that never decrease (and
// repeat only where allowed) and the wire type each field has.
type fields struct {
	b    []byte
	last protowire.Number
	err  error
}

func (r *fields) next(repeatable func(protowire.Number) bool) (protowire.Number, []byte, uint64, bool) {
	if r.err != nil || len(r.b) == 0 {
		return 0, nil, 0, false
	}
	num, typ, n := protowire.ConsumeTag(r.b)
	// Minimal varints keep the encoding canonical: one record, one byte string.
	if n < 0 || n != protowire.SizeTag(num) || num < r.last || (num == r.last && !repeatable(num)) {
		r.err = errBadFrame
		return 0, nil, 0, false
	}
	r.last = num
	r.b = r.b[n:]
	switch typ {
	case protowire.BytesType:
		v, n := protowire.ConsumeBytes(r.b)
		if n < 0 || n != protowire.SizeBytes(len(v)) {
			r.err = errBadFrame
			return 0, nil, 0, false
		}
		r.b = r.b[n:]
		return num, v, 0, true
	case protowire.VarintType:
		v, n := protowire.ConsumeVarint(r.b)
		if n < 0 || n != protowire.SizeVarint(v) {
			r.err = errBadFrame
			return 0, nil, 0, false
		}
		r.b = r.b[n:]
		return num, nil, v, true
	}
	r.err = errBadFrame
	return 0, nil, 0, false
}

func name(v []byte, limit int) (string, error) {
	if len(v) == 0 || len(v) > limit {
		return "", errBadFrame
	}
	return string(v), nil
}

func never(protowire.Number) bool { return false }

func decodeFrame(b []byte) (*frame, error) {
	f := &frame{}
	r := fields{b: b}
	var sawSession bool
	for {
		num, v, x, ok := r.next(never)
		if !ok {
			break
		}
		var err error
		switch num {
		case fSession:
			if len(v) != sessionIDSize {
				return nil, errBadFrame
			}
			copy(f.Session[:], v)
			sawSession = true
		case fLabel:
			f.Label, err = name(v, maxNameLen)
		case fFrom:
			f.From, err = name(v, maxNameLen)
		case fTo:
			f.To, err = name(v, maxNameLen)
		case fStep:
			f.Step = x
		case fPayload:
			f.Payload = v
		case fHeader:
			f.Header, err = decodeHeader(v)
		case fCode:
			if x > uint64(maxAbortCode) {
				x = uint64(AbortUnknown)
			}
			f.Code = AbortCode(x)
		case fDetail:
			if len(v) > maxDetailLen {
				return nil, errBadFrame
			}
			f.Detail = string(v)
		default:
			return nil, errBadFrame
		}
		if err != nil {
			return nil, err
		}
	}
	if r.err != nil || !sawSession {
		return nil, errBadFrame
	}
	return f, nil
}

func decodeHeader(b []byte) (*header, error) {
	h := &header{Roles: map[string]core.DeviceID{}}
	r := fields{b: b}
	repeat := func(n protowire.Number) bool { return n == hRole || n == hChoice }
	for {
		num, v, _, ok := r.next(repeat)
		if !ok {
			break
		}
		switch num {
		case hProtocol:
			s, err := name(v, maxNameLen)
			if err != nil {
				return nil, err
			}
			h.Protocol = s
		case hHash:
			if len(v) != len(h.Hash) {
				return nil, errBadFrame
			}
			copy(h.Hash[:], v)
		case hContext:
			if len(v) != len(h.Context) {
				return nil, errBadFrame
			}
			copy(h.Context[:], v)
		case hRole:
			role, dev, err := decodeRole(v)
			if err != nil {
				return nil, err
			}
			if _, dup := h.Roles[role]; dup || len(h.Roles) == maxWireRoles {
				return nil, errBadFrame
			}
			h.Roles[role] = dev
		case hChoice:
			s, err := name(v, maxNameLen)
			if err != nil || len(h.Choices) == maxChoices {
				return nil, errBadFrame
			}
			h.Choices = append(h.Choices, s)
		default:
			return nil, errBadFrame
		}
	}
	if r.err != nil || h.Protocol == "" || len(h.Roles) == 0 {
		return nil, errBadFrame
	}
	return h, nil
}

func decodeRole(b []byte) (string, core.DeviceID, error) {
	var role string
	var dev core.DeviceID
	var sawDev bool
	r := fields{b: b}
	for {
		num, v, _, ok := r.next(never)
		if !ok {
			break
		}
		switch num {
		case 1:
			s, err := name(v, maxNameLen)
			if err != nil {
				return "", dev, err
			}
			role = s
		case 2:
			if len(v) != len(dev) {
				return "", dev, errBadFrame
			}
			copy(dev[:], v)
			sawDev = true
		default:
			return "", dev, errBadFrame
		}
	}
	if r.err != nil || role == "" || !sawDev {
		return "", dev, errBadFrame
	}
	return role, dev, nil
}
