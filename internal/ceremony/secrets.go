package ceremony

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"

	"github.com/aura-p2p/aura/internal/core"
)

// A relational context's root secret is known to its participants only. The
// inviter draws it, seals it to the invitee's HPKE key inside the commit
// (DESIGN §4), and each side keeps it encrypted at rest under a key derived
// from its own device key, so a copied journal alone does not reveal it.

// RootSize is the size of a context root secret.
const RootSize = 32

var suite = hpke.NewSuite(hpke.KEM_X25519_HKDF_SHA256, hpke.KDF_HKDF_SHA256, hpke.AEAD_ChaCha20Poly1305)

const (
	infoSeal    = "aura/context/root/seal/v1"
	infoWrap    = "aura/context/root/wrap/v1"
	infoKey     = "aura/context/key/v1"
	wrapVersion = 1
)

// sealRoot encrypts root to the holder of recipientPub, bound to the
// ceremony: a sealed root lifted from one commit opens in no other.
func sealRoot(rand io.Reader, recipientPub []byte, root [RootSize]byte, ceremony core.Hash) ([]byte, error) {
	pub, err := hpke.KEM_X25519_HKDF_SHA256.Scheme().UnmarshalBinaryPublicKey(recipientPub)
	if err != nil {
		return nil, fmt.Errorf("recipient HPKE key: %w", core.ErrInvalidArgument)
	}
	snd, err := suite.NewSender(pub, append([]byte(infoSeal), ceremony[:]...))
	if err != nil {
		return nil, err
	}
	enc, sealer, err := snd.Setup(rand)
	if err != nil {
		return nil, err
	}
	ct, err := sealer.Seal(root[:], nil)
	if err != nil {
		return nil, err
	}
	return append(enc, ct...), nil
}

// openRoot undoes sealRoot with this device's HPKE key.
func openRoot(priv kem.PrivateKey, sealed []byte, ceremony core.Hash) ([RootSize]byte, error) {
	var root [RootSize]byte
	encLen := hpke.KEM_X25519_HKDF_SHA256.Scheme().CiphertextSize()
	if len(sealed) != encLen+RootSize+16 {
		return root, fmt.Errorf("sealed root secret of %d bytes: %w", len(sealed), core.ErrInvalidArgument)
	}
	rcv, err := suite.NewReceiver(priv, append([]byte(infoSeal), ceremony[:]...))
	if err != nil {
		return root, err
	}
	opener, err := rcv.Setup(sealed[:encLen])
	if err != nil {
		return root, fmt.Errorf("sealed root secret: %w", core.ErrInvalidArgument)
	}
	pt, err := opener.Open(sealed[encLen:], nil)
	if err != nil {
		return root, fmt.Errorf("sealed root secret does not open with this device's key: %w", core.ErrPermissionDenied)
	}
	copy(root[:], pt)
	return root, nil
}

// wrapper encrypts context roots at rest under a key derived from the
// device key.
type wrapper struct{ aead cipher.AEAD }

func newWrapper(device ed25519.PrivateKey) (*wrapper, error) {
	k, err := hkdf.Key(sha256.New, device.Seed(), nil, infoWrap, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &wrapper{aead: aead}, nil
}

// wrap returns version(1) nonce(12) ciphertext, bound to the context id.
func (w *wrapper) wrap(rand io.Reader, c core.ContextID, root [RootSize]byte) ([]byte, error) {
	nonce := make([]byte, w.aead.NonceSize())
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, err
	}
	out := append([]byte{wrapVersion}, nonce...)
	return w.aead.Seal(out, nonce, root[:], c[:]), nil
}

func (w *wrapper) unwrap(c core.ContextID, b []byte) ([RootSize]byte, error) {
	var root [RootSize]byte
	ns := w.aead.NonceSize()
	if len(b) != 1+ns+RootSize+w.aead.Overhead() || b[0] != wrapVersion {
		return root, fmt.Errorf("stored root of context %s is malformed: %w", c, core.ErrDataLoss)
	}
	pt, err := w.aead.Open(nil, b[1:1+ns], b[1+ns:], c[:])
	if err != nil {
		return root, fmt.Errorf("stored root of context %s does not open with this device's key: %w", c, core.ErrDataLoss)
	}
	copy(root[:], pt)
	return root, nil
}

// ContextKey derives the key for one purpose and epoch of a context from its
// root: KDF(root, purpose, epoch), so keys of different uses or epochs are
// independent and a leaked epoch key reveals nothing of the root.
func ContextKey(root [RootSize]byte, purpose string, epoch uint64) ([32]byte, error) {
	var out [32]byte
	info := append([]byte(infoKey+"\x00"+purpose+"\x00"), binary.BigEndian.AppendUint64(nil, epoch)...)
	k, err := hkdf.Expand(sha256.New, root[:], string(info), 32)
	if err != nil {
		return out, err
	}
	copy(out[:], k)
	return out, nil
}
