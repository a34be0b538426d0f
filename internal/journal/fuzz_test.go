package journal

import (
	"bytes"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

// Every decoder of bytes from the network or the disk is fuzzed: no panic, and
// whatever decodes re-encodes to the same bytes (one encoding per value).

func FuzzDecodeSignedFact(f *testing.F) {
	s := seededSigner(3)
	sf, _ := SignFact(s, Fact{Namespace: core.ContextNamespace(core.ContextID{1}), TypeID: "app.x/v1", Payload: []byte("p"), Author: s.DeviceID(), Lamport: 5, CreatedAtMs: 9, SchemaVersion: 2})
	f.Add(sf.Encode())
	f.Add([]byte{0x0a, 0x00, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeSignedFact(b)
		if err != nil {
			return
		}
		if !bytes.Equal(got.Encode(), b) {
			t.Fatalf("re-encoding differs")
		}
		body, err := EncodeBody(&got.Fact)
		if err != nil || !bytes.Equal(body, got.Body) {
			t.Fatalf("body re-encoding differs: %v", err)
		}
	})
}

func FuzzDecodeGenesis(f *testing.F) {
	g := Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Members: []Member{{Device: core.DeviceID{1}}, {Device: core.DeviceID{2}}}}
	p, _ := g.Encode()
	f.Add(p)
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := DecodeGenesis(b)
		if err != nil {
			return
		}
		again, err := g.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

func FuzzDecodeStoredRecords(f *testing.F) {
	f.Add(encodeNSRecord(&nsRecord{maxLamport: 3, factCount: 2, threshold: 1, members: []core.DeviceID{{1}}}))
	f.Add(encodeIDEntry(location{ns: core.ContextNamespace(core.ContextID{1}), key: FactKey{Lamport: 1}, seq: 2}))
	f.Add(encodeLogEntry(location{ns: core.ContextNamespace(core.ContextID{1}), key: FactKey{Lamport: 1}, seq: 2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeNSRecord(b); err == nil && !bytes.Equal(encodeNSRecord(r), b) {
			t.Fatal("namespace record re-encoding differs")
		}
		if l, err := decodeIDEntry(core.FactID{}, b); err == nil && !bytes.Equal(encodeIDEntry(l), b) {
			t.Fatal("id entry re-encoding differs")
		}
		if l, err := decodeLogEntry(0, b); err == nil && !bytes.Equal(encodeLogEntry(l), b) {
			t.Fatal("log entry re-encoding differs")
		}
		if hw, st, err := splitState(b); err == nil && !bytes.Equal(joinState(hw, st), b) {
			t.Fatal("state entry re-encoding differs")
		}
	})
}
