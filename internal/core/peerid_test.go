package core

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestParseDevice(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d, err := DeviceIDFromKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pid := peerOf(t, pub)
	_, secp, err := p2pcrypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secpID, err := peer.IDFromPublicKey(secp)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"hex device id", d.String(), true},
		{"peer id", pid.String(), true},
		{"peer id as CID", peer.ToCid(pid).String(), true},
		{"empty", "", false},
		{"garbage", "x", false},
		{"short hex", strings.Repeat("0", 63), false},
		{"secp256k1 peer", secpID.String(), false},
		{"hashed key peer", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDevice(tc.in)
			switch {
			case tc.ok && (err != nil || got != d):
				t.Fatalf("got %s, %v; want %s", got, err, d)
			case !tc.ok && !errors.Is(err, ErrInvalidArgument):
				t.Fatalf("got %s, %v; want ErrInvalidArgument", got, err)
			}
		})
	}
}

// peerOf is libp2p's own peer id for key: the reference the decoder in
// core is checked against (libp2p is a test dependency only).
func peerOf(t *testing.T, key ed25519.PublicKey) peer.ID {
	t.Helper()
	pub, err := p2pcrypto.UnmarshalEd25519PublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// Every form libp2p prints for random keys decodes to the key.
func TestParseDeviceAgreesWithLibp2p(t *testing.T) {
	for range 200 {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := DeviceIDFromKey(pub)
		pid := peerOf(t, pub)
		for _, s := range []string{pid.String(), peer.ToCid(pid).String()} {
			if got, err := ParseDevice(s); err != nil || got != want {
				t.Fatalf("ParseDevice(%s) = %s, %v; want %s", s, got, err, want)
			}
		}
	}
}
