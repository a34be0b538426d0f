package core

import (
	"bytes"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
)

// ParseDevice accepts a device as a 64-hex device id or as its libp2p peer
// id (users copy either from logs and other tools). The peer id forms are
// decoded here rather than with libp2p so that everything below transport,
// and auractl's offline commands, stay free of the network stack: an
// Ed25519 peer id is only an encoding of the key itself (an identity
// multihash of the protobuf public key), as base58btc ("12D3KooW…") or as a
// CIDv1 with the libp2p-key codec in multibase ("bafz…", "z…", "f…").
func ParseDevice(s string) (DeviceID, error) {
	if d, err := ParseDeviceID(s); err == nil {
		return d, nil
	}
	d, err := parsePeerID(s)
	if err != nil {
		return DeviceID{}, fmt.Errorf("%q is neither a device id nor a peer id (%v): %w", s, err, ErrInvalidArgument)
	}
	return d, nil
}

// ed25519KeyPrefix is the protobuf PublicKey{Type: Ed25519, Data: <32 bytes>}
// header libp2p puts before the raw key.
var ed25519KeyPrefix = []byte{0x08, 0x01, 0x12, 0x20}

const (
	multihashIdentity = 0x00
	multihashSHA256   = 0x12
	cidCodecLibp2pKey = 0x72
)

func parsePeerID(s string) (DeviceID, error) {
	var mh []byte
	var err error
	switch {
	case strings.HasPrefix(s, "1") || strings.HasPrefix(s, "Qm"):
		mh, err = decodeBase58(s)
	case len(s) > 1:
		mh, err = decodeCID(s)
	default:
		return DeviceID{}, fmt.Errorf("empty")
	}
	if err != nil {
		return DeviceID{}, err
	}
	code, n := binary.Uvarint(mh)
	if n <= 0 {
		return DeviceID{}, fmt.Errorf("bad multihash")
	}
	mh = mh[n:]
	size, n := binary.Uvarint(mh)
	if n <= 0 || uint64(len(mh)-n) != size {
		return DeviceID{}, fmt.Errorf("bad multihash length")
	}
	digest := mh[n:]
	switch code {
	case multihashIdentity:
	case multihashSHA256:
		return DeviceID{}, fmt.Errorf("not an Ed25519 key (a hashed key id)")
	default:
		return DeviceID{}, fmt.Errorf("multihash code %#x", code)
	}
	if len(digest) != len(ed25519KeyPrefix)+32 || !bytes.HasPrefix(digest, ed25519KeyPrefix) {
		return DeviceID{}, fmt.Errorf("not an Ed25519 key")
	}
	var d DeviceID
	copy(d[:], digest[len(ed25519KeyPrefix):])
	return d, nil
}

// decodeCID decodes a multibase CIDv1 with the libp2p-key codec and returns
// its multihash.
func decodeCID(s string) ([]byte, error) {
	var raw []byte
	var err error
	switch s[0] {
	case 'b':
		raw, err = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(s[1:]))
	case 'B':
		raw, err = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s[1:])
	case 'z':
		raw, err = decodeBase58(s[1:])
	case 'f', 'F':
		raw, err = hex.DecodeString(s[1:])
	default:
		return nil, fmt.Errorf("unknown encoding")
	}
	if err != nil {
		return nil, err
	}
	version, n := binary.Uvarint(raw)
	if n <= 0 || version != 1 {
		return nil, fmt.Errorf("not a CIDv1")
	}
	raw = raw[n:]
	codec, n := binary.Uvarint(raw)
	if n <= 0 || codec != cidCodecLibp2pKey {
		return nil, fmt.Errorf("CID codec is not libp2p-key")
	}
	return raw[n:], nil
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// decodeBase58 decodes Bitcoin-alphabet base58 (peer ids are short, so the
// big.Int arithmetic costs nothing that matters).
func decodeBase58(s string) ([]byte, error) {
	if s == "" || len(s) > 128 {
		return nil, fmt.Errorf("bad base58 length")
	}
	n := new(big.Int)
	radix := big.NewInt(58)
	for _, c := range []byte(s) {
		i := strings.IndexByte(base58Alphabet, c)
		if i < 0 {
			return nil, fmt.Errorf("bad base58 character %q", c)
		}
		n.Mul(n, radix)
		n.Add(n, big.NewInt(int64(i)))
	}
	out := n.Bytes()
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	return append(make([]byte, zeros), out...), nil
}
