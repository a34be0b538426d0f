package session

import (
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// TypeFact is the journal fact a send commits for its journal_facts
// annotation, in the same transaction as the send's flow charge.
const TypeFact = "aura.choreo.fact/v1"

// SessionFact is the payload of a TypeFact: which session, which protocol,
// which of its facts, and the message that carried it.
type SessionFact struct {
	Session  SessionID
	Protocol string
	Fact     string
	Label    string
	Role     string // the sending role
	Step     uint64 // the sender's step count at the send
}

// Encode returns the canonical payload: fields 1..6 in order, empty ones
// omitted.
func (f *SessionFact) Encode() []byte {
	var b []byte
	b = appendBytes(b, 1, f.Session[:])
	b = appendString(b, 2, f.Protocol)
	b = appendString(b, 3, f.Fact)
	b = appendString(b, 4, f.Label)
	b = appendString(b, 5, f.Role)
	b = appendVarint(b, 6, f.Step)
	return b
}

// DecodeSessionFact accepts exactly the canonical encoding.
func DecodeSessionFact(b []byte) (*SessionFact, error) {
	f := &SessionFact{}
	r := fields{b: b}
	var sawSession bool
	for {
		num, v, x, ok := r.next(never)
		if !ok {
			break
		}
		var err error
		switch num {
		case 1:
			if len(v) != sessionIDSize {
				return nil, errBadFact
			}
			copy(f.Session[:], v)
			sawSession = true
		case 2:
			f.Protocol, err = name(v, maxNameLen)
		case 3:
			f.Fact, err = name(v, maxNameLen)
		case 4:
			f.Label, err = name(v, maxNameLen)
		case 5:
			f.Role, err = name(v, maxNameLen)
		case 6:
			f.Step = x
		default:
			return nil, errBadFact
		}
		if err != nil {
			return nil, errBadFact
		}
	}
	if r.err != nil || !sawSession || f.Protocol == "" || f.Fact == "" || f.Label == "" || f.Role == "" {
		return nil, errBadFact
	}
	// Canonical: re-encoding gives the same bytes (no zero varint written).
	if string(f.Encode()) != string(b) {
		return nil, errBadFact
	}
	return f, nil
}

var errBadFact = fmt.Errorf("malformed %s payload: %w", TypeFact, core.ErrInvalidArgument)

// Validators returns the journal validators of this package's fact types, so
// the reserved aura. prefix accepts them.
func Validators() map[string]journal.Validator {
	return map[string]journal.Validator{
		TypeFact: func(f *journal.SignedFact) error {
			_, err := DecodeSessionFact(f.Payload)
			return err
		},
	}
}
