package ceremony

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// tb is what helpers need of a test; *rapid.T has it too.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// seededKey is a deterministic device key, so that seeds and failures
// reproduce.
func seededKey(seed byte) ed25519.PrivateKey {
	var s [ed25519.SeedSize]byte
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s[:])
}

func seededHPKE(t testing.TB, seed byte) (kem.PrivateKey, []byte) {
	t.Helper()
	var s [32]byte
	for i := range s {
		s[i] = seed ^ byte(i*7)
	}
	pub, priv := hpke.KEM_X25519_HKDF_SHA256.Scheme().DeriveKeyPair(s[:])
	pb, err := pub.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return priv, pb
}

func deviceOf(k ed25519.PrivateKey) core.DeviceID {
	var d core.DeviceID
	copy(d[:], k.Public().(ed25519.PublicKey))
	return d
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v + byte(i)
	}
}

// sampleInvitation is a signed invitation with every field set.
func sampleInvitation(t testing.TB, key ed25519.PrivateKey, addrs int, message string) *Invitation {
	t.Helper()
	iv := &Invitation{Inviter: deviceOf(key), Expires: time.Unix(1_800_000_000, 0).UTC(), Message: message}
	fill(iv.ID[:], 1)
	fill(iv.Authority[:], 2)
	fill(iv.InviterHPKE[:], 3)
	fill(iv.Secret[:], 4)
	for i := range addrs {
		iv.Addrs = append(iv.Addrs, "/ip4/127.0.0.1/tcp/"+string(rune('0'+i%10))+"000")
	}
	if err := iv.Sign(key); err != nil {
		t.Fatal(err)
	}
	return iv
}

func sampleCommit() *Commit {
	c := &Commit{Operation: OperationContact, InviteeRoot: make([]byte, 80)}
	fill(c.Ceremony[:], 1)
	fill(c.Prestate[:], 2)
	fill(c.Invitation[:], 3)
	fill(c.Inviter[:], 4)
	fill(c.Invitee[:], 5)
	fill(c.InviteeHPKE[:], 6)
	fill(c.InviteeDevID[:], 7)
	fill(c.InviteeRoot, 8)
	return c
}

func sampleFact(t tb, key ed25519.PrivateKey, ns core.Namespace, typeID string, lamport uint64, payload []byte) *journal.SignedFact {
	t.Helper()
	s := journal.NewKeySigner(key)
	sf, err := journal.SignFact(s, journal.Fact{Namespace: ns, TypeID: typeID, Payload: payload, Author: s.DeviceID(), Lamport: lamport, CreatedAtMs: 1_700_000_000_000})
	if err != nil {
		t.Fatal(err)
	}
	return sf
}
