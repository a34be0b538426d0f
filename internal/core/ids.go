package core

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"strings"
)

// DeviceID is a device's Ed25519 public key. The libp2p peer ID is derived from
// the same key, so a transport handshake authenticates the device.
type DeviceID [ed25519.PublicKeySize]byte

// AuthorityID names an account: the tagged hash of its genesis.
type AuthorityID Hash

// ContextID names a relational context (a contact, a group).
type ContextID Hash

// FactID is the tagged hash of a fact's signed body bytes.
type FactID Hash

func (d DeviceID) String() string    { return hex.EncodeToString(d[:]) }
func (a AuthorityID) String() string { return hex.EncodeToString(a[:]) }
func (c ContextID) String() string   { return hex.EncodeToString(c[:]) }
func (f FactID) String() string      { return hex.EncodeToString(f[:]) }

// PublicKey returns the device's key in crypto/ed25519 form.
func (d DeviceID) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(d[:]) }

// DeviceIDFromKey converts an Ed25519 public key.
func DeviceIDFromKey(pub ed25519.PublicKey) (DeviceID, error) {
	var d DeviceID
	if len(pub) != len(d) {
		return d, fmt.Errorf("device key: want %d bytes, got %d: %w", len(d), len(pub), ErrInvalidArgument)
	}
	copy(d[:], pub)
	return d, nil
}

// ParseDeviceID decodes the hex form of a DeviceID.
func ParseDeviceID(s string) (DeviceID, error) {
	h, err := ParseHash(s)
	if err != nil {
		return DeviceID{}, fmt.Errorf("device id: %w", err)
	}
	return DeviceID(h), nil
}

// ParseFactID decodes the hex form of a FactID.
func ParseFactID(s string) (FactID, error) {
	h, err := ParseHash(s)
	if err != nil {
		return FactID{}, fmt.Errorf("fact id: %w", err)
	}
	return FactID(h), nil
}

// ParseAuthorityID decodes the hex form of an AuthorityID.
func ParseAuthorityID(s string) (AuthorityID, error) {
	h, err := ParseHash(s)
	if err != nil {
		return AuthorityID{}, fmt.Errorf("authority id: %w", err)
	}
	return AuthorityID(h), nil
}

// ParseContextRef accepts a context as clients write it: "context/<hex>",
// the namespace form, or the bare hex id.
func ParseContextRef(s string) (ContextID, error) {
	return ParseContextID(strings.TrimPrefix(s, "context/"))
}

// ParseContextID decodes the hex form of a ContextID.
func ParseContextID(s string) (ContextID, error) {
	h, err := ParseHash(s)
	if err != nil {
		return ContextID{}, fmt.Errorf("context id: %w", err)
	}
	return ContextID(h), nil
}
