package ceremony

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Every decoder of bytes from the network or the disk is fuzzed: no panic,
// and whatever decodes re-encodes to the same bytes (one encoding per value,
// as wire.go promises).

func FuzzParseCode(f *testing.F) {
	key := seededKey(1)
	for _, n := range []int{0, 1, MaxCodeAddrs} {
		f.Add(sampleInvitation(f, key, n, "hi").Code())
	}
	f.Add(sampleInvitation(f, key, 2, strings.Repeat("é", MaxMessageBytes/2)).Code())
	f.Add(CodePrefix)
	f.Add("  " + sampleInvitation(f, key, 1, "").Code() + "\n")
	f.Fuzz(func(t *testing.T, code string) {
		iv, err := ParseCode(code)
		if err != nil {
			if !isCodeError(err) {
				t.Fatalf("refusal %v is not one of the code's errors", err)
			}
			return
		}
		// The decoded bytes are exactly what the code carried.
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(code)[len(CodePrefix):])
		if err != nil {
			t.Fatal(err)
		}
		if got := append(iv.signed(), iv.Signature[:]...); !bytes.Equal(got, raw) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, raw)
		}
		again, err := ParseCode(iv.Code())
		if err != nil {
			t.Fatalf("own code refused: %v", err)
		}
		if again.Code() != iv.Code() {
			t.Fatal("code changed on a second round trip")
		}
	})
}

// FuzzDecodeInvitation reaches past the signature check, which a fuzzer
// cannot forge.
func FuzzDecodeInvitation(f *testing.F) {
	key := seededKey(1)
	for _, n := range []int{0, 3, MaxCodeAddrs} {
		iv := sampleInvitation(f, key, n, "message")
		f.Add(append(iv.signed(), iv.Signature[:]...))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		iv, err := decodeInvitation(raw)
		if err != nil {
			return
		}
		if got := append(iv.signed(), iv.Signature[:]...); !bytes.Equal(got, raw) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, raw)
		}
	})
}

func FuzzDecodeCommit(f *testing.F) {
	f.Add(sampleCommit().Encode())
	f.Add((&Commit{Operation: OperationContact}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommit(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Encode(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeAbort(f *testing.F) {
	f.Add((&Abort{Ceremony: core.Hash{1}, Operation: OperationContact, Reason: ReasonCancelled, Detail: "cancelled by the inviter"}).Encode())
	f.Add((&Abort{}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAbort(b)
		if err != nil {
			return
		}
		if !bytes.Equal(a.Encode(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeContactRecord(f *testing.F) {
	f.Add((&ContactRecord{Context: core.ContextID{1}, Ceremony: core.Hash{2}, Authority: core.AuthorityID{3}, Device: core.DeviceID{4}, Nickname: "alice"}).Encode())
	f.Add((&ContactRecord{}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeContactRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Encode(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeContactChange(f *testing.F) {
	f.Add(true, (&ContactChange{Context: core.ContextID{1}, Nickname: "bob"}).encode(TypeContactName))
	f.Add(false, (&ContactChange{Context: core.ContextID{1}, Blocked: true}).encode(TypeContactBlock))
	f.Add(false, (&ContactChange{Context: core.ContextID{1}}).encode(TypeContactBlock))
	f.Fuzz(func(t *testing.T, name bool, b []byte) {
		typeID := TypeContactBlock
		if name {
			typeID = TypeContactName
		}
		c, err := decodeContactChange(typeID, b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.encode(typeID), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeAcceptance(f *testing.F) {
	a := &acceptance{Invitation: [16]byte{1}, Authority: core.AuthorityID{2}, HPKE: [32]byte{3}, Nonce: [32]byte{4}}
	a.Proof = proof([32]byte{5}, labelAccept, core.DeviceID{6}, a)
	f.Add(a.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAcceptance(b)
		if err != nil {
			return
		}
		if !bytes.Equal(a.encode(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeCommitMsg(f *testing.F) {
	key := seededKey(2)
	ns := core.ContextNamespace(core.ContextID{9})
	g := sampleFact(f, key, ns, journal.TypeGenesis, 1, []byte("genesis"))
	c := sampleFact(f, key, ns, TypeCommit, 2, sampleCommit().Encode())
	f.Add((&commitMsg{Genesis: g, Commit: c}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeCommitMsg(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.encode(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeAbortMsg(f *testing.F) {
	f.Add((&abortMsg{Reason: ReasonBadProof, Detail: "acceptance without the invitation's secret"}).encode())
	f.Add((&abortMsg{}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAbortMsg(b)
		if err != nil {
			return
		}
		if !bytes.Equal(a.encode(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeInvitationRecord(f *testing.F) {
	r := &InvitationRecord{ID: [16]byte{1}, State: InvitationAccepted, Created: time.UnixMilli(1_700_000_000_123), Expires: time.Unix(1_800_000_000, 0),
		Secret: [32]byte{2}, Message: "hello", Invitee: core.DeviceID{3}, Ceremony: core.Hash{4}, Context: core.ContextID{5},
		Genesis: core.FactID{6}, Commit: core.FactID{7}, Resolved: time.UnixMilli(1_700_000_001_456)}
	f.Add(r.encode())
	f.Add((&InvitationRecord{State: InvitationPending}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeInvitationRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.encode(), b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", r.encode(), b)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	r := &Record{ID: core.Hash{1}, Operation: OperationContact, Role: RoleInviter, Peer: core.DeviceID{2}, Invitation: [16]byte{3},
		State: CeremonyCommitted, Context: core.ContextID{4}, Confirmed: true,
		Started: time.UnixMilli(1_700_000_000_123), Updated: time.UnixMilli(1_700_000_000_456)}
	f.Add(r.encode())
	f.Add((&Record{State: CeremonyAborted, Reason: ReasonRestarted, Detail: "aurad restarted during the ceremony"}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if enc := r.encode(); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, b)
		}
	})
}

func TestDecodeRecordConfirmedCanonical(t *testing.T) {
	b := (&Record{State: CeremonyCommitted, Confirmed: true}).encode()
	b[len(b)-17] = 2
	if _, err := decodeRecord(b); !errors.Is(err, core.ErrDataLoss) {
		t.Fatalf("decodeRecord with confirmed = 2: %v, want ErrDataLoss", err)
	}
}
