package sync

import (
	"bytes"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/sync/riblt"
)

// Seeds: one valid message of each type.
func wireSeeds(t testing.TB) [][]byte {
	sid := sessionID{1, 2, 3, 4, 5, 6, 7, 8}
	enc, _ := riblt.NewEncoder(riblt.DeriveKey([]byte("k")), 8)
	enc.Add([32]byte{7})
	syms, _ := enc.Symbols(0, 2, nil)
	open, err := (&openMsg{Count: 3, Symbols: riblt.Batch{Symbols: syms}}).encode(sid)
	if err != nil {
		t.Fatal(err)
	}
	sketch, err := (&sketchMsg{RoundEnd: 4, Symbols: riblt.Batch{Start: 2, Symbols: syms}}).encode(sid)
	if err != nil {
		t.Fatal(err)
	}
	reply := (&replyMsg{Status: replyDecoded, Count: 9, Estimate: 2, Push: 1, Want: []idPrefix{{1}}}).encode(sid)
	rng := encodeRangeReply(sid, rangeReply{push: 2, ranges: []wireRange{
		{Upper: bound{Lamport: 5, Prefix: []byte{3}}, Mode: modeFingerprint, Count: 4},
		{Upper: bound{Lamport: 9}, Mode: modeIDList, IDs: []core.FactID{{2}}},
		{Upper: bound{Inf: true}, Mode: modeSkip},
	}})
	s := seeded(3)
	f, err := journal.SignFact(s, journal.Fact{Namespace: core.ContextNamespace(core.ContextID{1}), TypeID: "test.note/v1", Author: s.DeviceID(), Lamport: 2, Payload: []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	batch := encodeBatch(sid, 1, [][]byte{f.Encode()})
	return [][]byte{open, sketch, reply, rng, encodeWant(sid, []idPrefix{{4}}), batch, encodeEnd(sid, "timeout")}
}

// Every decoder of a peer's bytes: no panic, bounded allocation, and what
// decodes re-encodes to the same bytes (one message, one encoding).
func FuzzSyncMessages(f *testing.F) {
	for i, s := range wireSeeds(f) {
		f.Add(uint8(i), s)
	}
	f.Fuzz(func(t *testing.T, kind uint8, p []byte) {
		sid, body, err := parseHeader(p)
		if err != nil {
			return
		}
		switch kind % 7 {
		case 0:
			m, err := decodeOpen(body)
			if err == nil {
				again, err := m.encode(sid)
				if err != nil || !bytes.Equal(again, p) {
					t.Fatalf("open re-encodes differently (%v)", err)
				}
			}
		case 1:
			m, err := decodeSketch(body)
			if err == nil {
				again, err := m.encode(sid)
				if err != nil || !bytes.Equal(again, p) {
					t.Fatalf("sketch re-encodes differently (%v)", err)
				}
			}
		case 2:
			if m, err := decodeReply(body); err == nil && !bytes.Equal(m.encode(sid), p) {
				t.Fatal("reply re-encodes differently")
			}
		case 3:
			if m, err := decodeRangeReply(body); err == nil && !bytes.Equal(encodeRangeReply(sid, m), p) {
				t.Fatal("range re-encodes differently")
			}
		case 4:
			if ids, err := decodeWant(body); err == nil && !bytes.Equal(encodeWant(sid, ids), p) {
				t.Fatal("want re-encodes differently")
			}
		case 5:
			if m, err := decodeBatch(body); err == nil {
				raws := make([][]byte, len(m.Facts))
				for i, f := range m.Facts {
					raws[i] = f.Encode()
				}
				if !bytes.Equal(encodeBatch(sid, m.Missing, raws), p) {
					t.Fatal("batch re-encodes differently")
				}
			}
		case 6:
			if r, err := decodeEnd(body); err == nil && !bytes.Equal(encodeEnd(sid, r), p) {
				t.Fatal("end re-encodes differently")
			}
		}
	})
}

func TestWireRefusals(t *testing.T) {
	sid := sessionID{9}
	seeds := wireSeeds(t)
	cases := []struct {
		name string
		p    []byte
		dec  func([]byte) error
	}{
		{"empty", nil, func(b []byte) error { _, _, err := parseHeader(b); return err }},
		{"other version", append([]byte{2}, seeds[2][1:]...), func(b []byte) error { _, _, err := parseHeader(b); return err }},
		{"reply trailing byte", append(seeds[2][9:], 0), func(b []byte) error { _, err := decodeReply(b); return err }},
		{"reply unknown status", append([]byte{9}, seeds[2][10:]...), func(b []byte) error { _, err := decodeReply(b); return err }},
		{"want empty", encodeWant(sid, nil)[9:], func(b []byte) error { _, err := decodeWant(b); return err }},
		{"want count lies", []byte{0xff, 0x01}, func(b []byte) error { _, err := decodeWant(b); return err }},
		{"non-minimal varint", []byte{0x80, 0x00}, func(b []byte) error { _, err := decodeWant(b); return err }},
		{"range bounds not increasing", encodeRangeReply(sid, rangeReply{ranges: []wireRange{
			{Upper: bound{Lamport: 5}, Mode: modeSkip}, {Upper: bound{Lamport: 5}, Mode: modeSkip}, {Upper: bound{Inf: true}, Mode: modeSkip}}})[9:],
			func(b []byte) error { _, err := decodeRangeReply(b); return err }},
		{"range not ending unbounded", encodeRangeReply(sid, rangeReply{ranges: []wireRange{{Upper: bound{Lamport: 5}, Mode: modeSkip}}})[9:],
			func(b []byte) error { _, err := decodeRangeReply(b); return err }},
		{"bound prefix ends in zero", encodeRangeReply(sid, rangeReply{ranges: []wireRange{
			{Upper: bound{Lamport: 5, Prefix: []byte{1, 0}}, Mode: modeSkip}, {Upper: bound{Inf: true}, Mode: modeSkip}}})[9:],
			func(b []byte) error { _, err := decodeRangeReply(b); return err }},
		{"batch empty", encodeBatch(sid, 0, nil)[9:], func(b []byte) error { _, err := decodeBatch(b); return err }},
		{"batch garbage fact", encodeBatch(sid, 0, [][]byte{{1, 2, 3}})[9:], func(b []byte) error { _, err := decodeBatch(b); return err }},
		{"end not printable", []byte{'a', 0}, func(b []byte) error { _, err := decodeEnd(b); return err }},
		{"sketch outside its round", func() []byte {
			m, _ := decodeSketch(seeds[1][9:])
			m.RoundEnd = 3
			p, _ := m.encode(sid)
			return p[9:]
		}(), func(b []byte) error { _, err := decodeSketch(b); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.dec(tc.p); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	for i, s := range seeds {
		if _, _, err := parseHeader(s); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
	}
}
