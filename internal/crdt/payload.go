package crdt

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal/lattice"
)

// Kind is an object's type.
type Kind uint8

const (
	KindCounter Kind = iota + 1
	KindRegister
	KindSet
	KindMap
)

var kindNames = map[Kind]string{KindCounter: "counter", KindRegister: "register", KindSet: "set", KindMap: "map"}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Fact types, one per kind.
const (
	TypeCounter  = "aura.crdt.counter/v1"
	TypeRegister = "aura.crdt.register/v1"
	TypeSet      = "aura.crdt.set/v1"
	TypeMap      = "aura.crdt.map/v1"
)

var typeOfKind = map[Kind]string{KindCounter: TypeCounter, KindRegister: TypeRegister, KindSet: TypeSet, KindMap: TypeMap}

func kindOfType(t string) (Kind, bool) {
	for k, tt := range typeOfKind {
		if tt == t {
			return k, true
		}
	}
	return 0, false
}

// OpType is one operation on an object.
type OpType uint8

const (
	OpCounterAdd OpType = iota + 1
	OpRegisterSet
	OpSetAdd
	OpSetRemove
	OpMapSet
	OpMapRemove
)

// Kind returns the object kind an operation applies to.
func (o OpType) Kind() Kind {
	switch o {
	case OpCounterAdd:
		return KindCounter
	case OpRegisterSet:
		return KindRegister
	case OpSetAdd, OpSetRemove:
		return KindSet
	case OpMapSet, OpMapRemove:
		return KindMap
	}
	return 0
}

// Op is a client's request to change an object.
type Op struct {
	Type OpType
	// Amount for OpCounterAdd (non-zero; negative decrements).
	Amount int64
	// Value for OpRegisterSet and OpMapSet.
	Value string
	// Element for OpSetAdd, OpSetRemove; key for OpMapSet, OpMapRemove.
	Element string
}

// Limits keep a single update well inside a fact's payload.
const (
	MaxNameLen    = 256
	MaxElementLen = 4096
	MaxValueLen   = 32 << 10
)

// Lattice types of each kind's state. Replicas are devices.
type (
	device      = lattice.Device
	counterLat  = lattice.PNCounter[device]
	registerLat = lattice.LWWRegister[lattice.String, device]
	setLat      = lattice.ORSet[lattice.String, device]
	mapLat      = lattice.ORMap[lattice.String, registerLat, device]
)

// CheckName accepts 1–256 bytes of UTF-8 without control characters.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("object name must be 1 to %d bytes, got %d: %w", MaxNameLen, len(name), core.ErrInvalidArgument)
	}
	return checkText("object name", name)
}

func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8: %w", what, core.ErrInvalidArgument)
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%s has a control character at byte %d: %w", what, i, core.ErrInvalidArgument)
	}
	return nil
}

func (o *Op) check() error {
	switch o.Type {
	case OpCounterAdd:
		if o.Amount == 0 {
			return fmt.Errorf("counter change of 0: %w", core.ErrInvalidArgument)
		}
	case OpRegisterSet, OpMapSet:
		if len(o.Value) > MaxValueLen {
			return fmt.Errorf("value is %d bytes, limit %d: %w", len(o.Value), MaxValueLen, core.ErrInvalidArgument)
		}
		if !utf8.ValidString(o.Value) {
			return fmt.Errorf("value is not valid UTF-8: %w", core.ErrInvalidArgument)
		}
	case OpSetAdd, OpSetRemove, OpMapRemove:
	default:
		return fmt.Errorf("unknown operation %d: %w", o.Type, core.ErrInvalidArgument)
	}
	if o.Type == OpMapSet || o.Type == OpMapRemove || o.Type == OpSetAdd || o.Type == OpSetRemove {
		if o.Element == "" || len(o.Element) > MaxElementLen {
			return fmt.Errorf("element or key must be 1 to %d bytes: %w", MaxElementLen, core.ErrInvalidArgument)
		}
		if err := checkText("element or key", o.Element); err != nil {
			return err
		}
	}
	return nil
}

const payloadVersion = 1

// update is a decoded fact payload: version(1) op(1) uvarint(len) name, then
// the op's body: a zigzag varint amount for counters, else the encoded
// lattice delta.
type update struct {
	op     OpType
	name   string
	amount int64
	delta  []byte
}

func (u *update) encode() []byte {
	b := make([]byte, 0, 8+len(u.name)+len(u.delta))
	b = append(b, payloadVersion, byte(u.op))
	b = binary.AppendUvarint(b, uint64(len(u.name)))
	b = append(b, u.name...)
	if u.op == OpCounterAdd {
		return binary.AppendVarint(b, u.amount)
	}
	return append(b, u.delta...)
}

func decodeUpdate(b []byte) (update, error) {
	bad := func(what string) (update, error) {
		return update{}, fmt.Errorf("crdt update: %s: %w", what, core.ErrInvalidArgument)
	}
	if len(b) < 3 || b[0] != payloadVersion {
		return bad("unknown version or truncated")
	}
	u := update{op: OpType(b[1])}
	if u.op.Kind() == 0 {
		return bad("unknown operation")
	}
	n, k := binary.Uvarint(b[2:])
	// Minimal varints only: one update, one encoding.
	if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n > uint64(len(b)-2-k) {
		return bad("name length")
	}
	off := 2 + k
	u.name = string(b[off : off+int(n)])
	if err := CheckName(u.name); err != nil {
		return update{}, err
	}
	rest := b[off+int(n):]
	if u.op == OpCounterAdd {
		v, k := binary.Varint(rest)
		if k <= 0 || k != len(rest) || k != len(binary.AppendVarint(nil, v)) || v == 0 {
			return bad("counter amount")
		}
		u.amount = v
		return u, nil
	}
	u.delta = rest
	return u, nil
}
