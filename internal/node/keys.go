package node

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"

	"github.com/aura-p2p/aura/internal/core"
)

// Key files inside the data dir. They never leave the device.
const (
	deviceKeyFile = "device.key"
	hpkeKeyFile   = "hpke.key"
	hpkePEMType   = "AURA HPKE X25519 PRIVATE KEY"
)

// hpkeKEM is the KEM of every device's HPKE key (DESIGN §4).
const hpkeKEM = hpke.KEM_X25519_HKDF_SHA256

// Keys are the device's long-term secrets.
type Keys struct {
	Device     ed25519.PrivateKey
	HPKE       kem.PrivateKey
	HPKEPublic []byte
}

// DeviceID is the device's public identity.
func (k *Keys) DeviceID() core.DeviceID {
	id, _ := core.DeviceIDFromKey(k.Device.Public().(ed25519.PublicKey))
	return id
}

// loadOrCreateKeys reads the device's keys from dir, creating any that are
// missing from rand. created reports whether the device key is new.
func loadOrCreateKeys(dir string, rand io.Reader) (keys *Keys, created bool, err error) {
	keys = &Keys{}
	devPath := filepath.Join(dir, deviceKeyFile)
	der, err := readSecret(devPath, "PRIVATE KEY")
	switch {
	case errors.Is(err, os.ErrNotExist):
		_, priv, err := ed25519.GenerateKey(rand)
		if err != nil {
			return nil, false, fmt.Errorf("generate device key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, false, err
		}
		if err := writeSecret(devPath, "PRIVATE KEY", der); err != nil {
			return nil, false, err
		}
		keys.Device, created = priv, true
	case err != nil:
		return nil, false, err
	default:
		k, err := x509.ParsePKCS8PrivateKey(der)
		priv, ok := k.(ed25519.PrivateKey)
		if err != nil || !ok {
			return nil, false, fmt.Errorf("%s is not an Ed25519 PKCS#8 key: %w", devPath, core.ErrFailedPrecondition)
		}
		keys.Device = priv
	}

	scheme := hpkeKEM.Scheme()
	hpkePath := filepath.Join(dir, hpkeKeyFile)
	raw, err := readSecret(hpkePath, hpkePEMType)
	switch {
	case errors.Is(err, os.ErrNotExist):
		seed := make([]byte, scheme.SeedSize())
		if _, err := io.ReadFull(rand, seed); err != nil {
			return nil, false, fmt.Errorf("generate HPKE key: %w", err)
		}
		_, priv := scheme.DeriveKeyPair(seed)
		if raw, err = priv.MarshalBinary(); err != nil {
			return nil, false, err
		}
		if err := writeSecret(hpkePath, hpkePEMType, raw); err != nil {
			return nil, false, err
		}
	case err != nil:
		return nil, false, err
	}
	if keys.HPKE, err = scheme.UnmarshalBinaryPrivateKey(raw); err != nil {
		return nil, false, fmt.Errorf("%s: %w: %w", hpkePath, err, core.ErrFailedPrecondition)
	}
	if keys.HPKEPublic, err = keys.HPKE.Public().MarshalBinary(); err != nil {
		return nil, false, err
	}
	return keys, created, nil
}

// readSecret reads one PEM block, refusing a file others can read: a leaked
// device key is a stolen identity.
func readSecret(path, pemType string) ([]byte, error) {
	if err := checkOwnerOnly(path, false); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != pemType {
		return nil, fmt.Errorf("%s: want a PEM %q block: %w", path, pemType, core.ErrFailedPrecondition)
	}
	return block.Bytes, nil
}

// writeSecret writes a PEM file with mode 0600 atomically: a crash leaves
// either no key or the whole key, never half of one.
func writeSecret(path, pemType string, der []byte) error {
	tmp, err := os.OpenFile(path+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(tmp, &pem.Block{Type: pemType, Bytes: der}); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
