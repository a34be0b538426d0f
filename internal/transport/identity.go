package transport

import (
	"crypto/ed25519"
	"fmt"

	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aura-p2p/aura/internal/core"
)

// PeerID is the libp2p peer id of a device: derived from the same Ed25519
// key, so Noise authenticates the device itself.
func PeerID(d core.DeviceID) (peer.ID, error) {
	pub, err := p2pcrypto.UnmarshalEd25519PublicKey(d[:])
	if err != nil {
		return "", fmt.Errorf("device key: %w: %w", err, core.ErrInvalidArgument)
	}
	return peer.IDFromPublicKey(pub)
}

// DeviceIDOf recovers the device from a peer id (Ed25519 keys are inlined in
// the id).
func DeviceIDOf(p peer.ID) (core.DeviceID, error) {
	pub, err := p.ExtractPublicKey()
	if err != nil {
		return core.DeviceID{}, fmt.Errorf("peer %s: %w: %w", p, err, core.ErrInvalidArgument)
	}
	if pub.Type() != p2pcrypto.Ed25519 {
		return core.DeviceID{}, fmt.Errorf("peer %s: not an Ed25519 key: %w", p, core.ErrInvalidArgument)
	}
	raw, err := pub.Raw()
	if err != nil {
		return core.DeviceID{}, err
	}
	return core.DeviceIDFromKey(ed25519.PublicKey(raw))
}
