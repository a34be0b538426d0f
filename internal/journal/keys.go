package journal

import (
	"encoding/binary"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
)

const nsKeyLen = 33

// nsKey is a namespace's 33-byte storage key: kind ‖ id.
func nsKey(ns core.Namespace) []byte {
	k := make([]byte, nsKeyLen)
	k[0] = byte(ns.Kind)
	copy(k[1:], ns.ID[:])
	return k
}

func parseNSKey(k []byte) (core.Namespace, error) {
	if len(k) != nsKeyLen {
		return core.Namespace{}, fmt.Errorf("namespace key of %d bytes: %w", len(k), ErrCorrupt)
	}
	ns := core.Namespace{Kind: core.NamespaceKind(k[0])}
	copy(ns.ID[:], k[1:])
	if !ns.Valid() {
		return core.Namespace{}, fmt.Errorf("namespace key kind %d: %w", k[0], ErrCorrupt)
	}
	return ns, nil
}

// factKey is a fact's key inside its namespace bucket: lamport ‖ id, so a
// cursor walks a namespace in reduction order.
func factKey(k FactKey) []byte {
	b := make([]byte, 40)
	binary.BigEndian.PutUint64(b, k.Lamport)
	copy(b[8:], k.ID[:])
	return b
}

func parseFactKey(b []byte) (FactKey, error) {
	if len(b) != 40 {
		return FactKey{}, fmt.Errorf("fact key of %d bytes: %w", len(b), ErrCorrupt)
	}
	var k FactKey
	k.Lamport = binary.BigEndian.Uint64(b)
	copy(k.ID[:], b[8:])
	return k, nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// location is where the ids and log buckets say a fact is.
type location struct {
	ns  core.Namespace
	key FactKey
	seq uint64
}

// encodeIDEntry: ns(33) ‖ lamport(8) ‖ seq(8).
func encodeIDEntry(l location) []byte {
	b := nsKey(l.ns)
	b = binary.BigEndian.AppendUint64(b, l.key.Lamport)
	return binary.BigEndian.AppendUint64(b, l.seq)
}

func decodeIDEntry(id core.FactID, b []byte) (location, error) {
	if len(b) != nsKeyLen+16 {
		return location{}, fmt.Errorf("id entry of %d bytes: %w", len(b), ErrCorrupt)
	}
	ns, err := parseNSKey(b[:nsKeyLen])
	if err != nil {
		return location{}, err
	}
	return location{
		ns:  ns,
		key: FactKey{Lamport: binary.BigEndian.Uint64(b[nsKeyLen:]), ID: id},
		seq: binary.BigEndian.Uint64(b[nsKeyLen+8:]),
	}, nil
}

// encodeLogEntry: ns(33) ‖ lamport(8) ‖ id(32).
func encodeLogEntry(l location) []byte {
	b := nsKey(l.ns)
	return append(b, factKey(l.key)...)
}

func decodeLogEntry(seq uint64, b []byte) (location, error) {
	if len(b) != nsKeyLen+40 {
		return location{}, fmt.Errorf("log entry of %d bytes: %w", len(b), ErrCorrupt)
	}
	ns, err := parseNSKey(b[:nsKeyLen])
	if err != nil {
		return location{}, err
	}
	k, err := parseFactKey(b[nsKeyLen:])
	if err != nil {
		return location{}, err
	}
	return location{ns: ns, key: k, seq: seq}, nil
}

// nsRecord is what the journal keeps per namespace.
type nsRecord struct {
	genesis    core.FactID
	maxLamport uint64
	factCount  uint64
	threshold  uint16
	// members are the genesis members, sorted. The current members, which
	// facts may have added to, are in members/<ns> (membership.go).
	members []core.DeviceID
}

const nsRecordVersion = 1

// encodeNSRecord: version(1) genesis(32) maxLamport(8) factCount(8)
// threshold(2) count(2) members(32 each, sorted).
func encodeNSRecord(r *nsRecord) []byte {
	b := make([]byte, 0, 53+32*len(r.members))
	b = append(b, nsRecordVersion)
	b = append(b, r.genesis[:]...)
	b = binary.BigEndian.AppendUint64(b, r.maxLamport)
	b = binary.BigEndian.AppendUint64(b, r.factCount)
	b = binary.BigEndian.AppendUint16(b, r.threshold)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.members)))
	for _, m := range r.members {
		b = append(b, m[:]...)
	}
	return b
}

func decodeNSRecord(b []byte) (*nsRecord, error) {
	const head = 53
	if len(b) < head || b[0] != nsRecordVersion {
		return nil, fmt.Errorf("namespace record: %w", ErrCorrupt)
	}
	r := &nsRecord{}
	copy(r.genesis[:], b[1:33])
	r.maxLamport = binary.BigEndian.Uint64(b[33:])
	r.factCount = binary.BigEndian.Uint64(b[41:])
	r.threshold = binary.BigEndian.Uint16(b[49:])
	n := int(binary.BigEndian.Uint16(b[51:]))
	if len(b) != head+32*n {
		return nil, fmt.Errorf("namespace record of %d bytes for %d members: %w", len(b), n, ErrCorrupt)
	}
	r.members = make([]core.DeviceID, n)
	for i := range r.members {
		copy(r.members[i][:], b[head+32*i:])
	}
	return r, nil
}
