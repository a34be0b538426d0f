package sync

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

func sampleFacts(t testing.TB, n int) []*journal.SignedFact {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	s := journal.NewKeySigner(key)
	ns := core.ContextNamespace(core.ContextID{1})
	var out []*journal.SignedFact
	for i := range n {
		f, err := journal.SignFact(s, journal.Fact{Namespace: ns, TypeID: "app.x/v1", Payload: []byte{byte(i)}, Author: s.DeviceID(), Lamport: uint64(i + 1), CreatedAtMs: 1})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func TestAnnouncementCodec(t *testing.T) {
	facts := sampleFacts(t, 3)
	b := EncodeFacts(facts)
	got, err := DecodeFacts(b)
	if err != nil || len(got) != 3 || got[2].ID != facts[2].ID || !bytes.Equal(EncodeFacts(got), b) {
		t.Fatalf("round trip: %v", err)
	}
	many := EncodeFacts(sampleFacts(t, MaxAnnounceFacts+1))
	for name, bad := range map[string][]byte{
		"empty":         nil,
		"version":       append([]byte{2}, b[1:]...),
		"no facts":      {announceVersion, 0},
		"too many":      many,
		"count too big": append([]byte{announceVersion, 4}, b[2:]...),
		"truncated":     b[:len(b)-1],
		"trailing":      append(append([]byte{}, b...), 0),
		"zero length":   {announceVersion, 1, 0, 0, 0, 0},
		"bad fact":      {announceVersion, 1, 0, 0, 0, 2, 0xff, 0xff},
	} {
		if _, err := DecodeFacts(bad); !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeFacts(f *testing.F) {
	f.Add(EncodeFacts(sampleFacts(f, 1)))
	f.Add(EncodeFacts(sampleFacts(f, 3)))
	f.Fuzz(func(t *testing.T, b []byte) {
		facts, err := DecodeFacts(b)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeFacts(facts), b) {
			t.Fatal("re-encoding differs")
		}
	})
}
