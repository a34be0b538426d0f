package budget

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

func seededSigner(seed byte) *journal.KeySigner {
	return journal.NewKeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)))
}

func signedReceipt(t testing.TB, s journal.Signer, dst core.DeviceID, nonce uint64, prev core.Hash) *Receipt {
	t.Helper()
	r := &Receipt{Context: core.ContextID{7}, Src: s.DeviceID(), Dst: dst, Epoch: 42, Period: 1, Cost: 3, Nonce: nonce, Prev: prev}
	if err := r.sign(s); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReceiptRoundTrip(t *testing.T) {
	a, b := seededSigner(1), seededSigner(2)
	r1 := signedReceipt(t, a, b.DeviceID(), 1, core.Hash{})
	r2 := signedReceipt(t, a, b.DeviceID(), 2, r1.Hash())
	for _, r := range []*Receipt{r1, r2} {
		enc := r.Encode()
		if len(enc) != ReceiptSize {
			t.Fatalf("encoded %d bytes", len(enc))
		}
		back, err := DecodeReceipt(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Encode(), enc) || back.Hash() != r.Hash() {
			t.Fatal("round trip changed the receipt")
		}
		if err := back.Verify(); err != nil {
			t.Fatal(err)
		}
	}
	if r1.Hash() == r2.Hash() {
		t.Fatal("distinct receipts share a hash")
	}
}

func TestReceiptTampering(t *testing.T) {
	a, b := seededSigner(1), seededSigner(2)
	r := signedReceipt(t, a, b.DeviceID(), 2, core.Hash{9})
	enc := r.Encode()
	// Flip every bit of the signed part and of the signature in turn: either
	// the bytes no longer decode, or the signature no longer verifies.
	for i := 0; i < len(enc); i++ {
		for bit := 0; bit < 8; bit++ {
			m := bytes.Clone(enc)
			m[i] ^= 1 << bit
			got, err := DecodeReceipt(m)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("byte %d: %v", i, err)
				}
				continue
			}
			if err := got.Verify(); err == nil {
				t.Fatalf("byte %d bit %d flipped and still verifies", i, bit)
			}
		}
	}
	// Signed by someone else than src.
	forged := *r
	forged.Sig = b.Sign(signingBytes(r.Hash()))
	if err := forged.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged: %v", err)
	}
	unsigned := *r
	unsigned.Sig = nil
	if err := unsigned.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("unsigned: %v", err)
	}
	if err := (&Receipt{Src: b.DeviceID(), Period: 1, Nonce: 1}).sign(a); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("signed as another device: %v", err)
	}
}

func TestDecodeReceiptRejects(t *testing.T) {
	a, b := seededSigner(1), seededSigner(2)
	good := signedReceipt(t, a, b.DeviceID(), 1, core.Hash{}).Encode()
	mutate := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	const period, nonce, prev = 1 + 96 + 8, 1 + 96 + 8 + 4 + 8, 1 + 96 + 8 + 4 + 16
	tests := map[string][]byte{
		"empty":        nil,
		"short":        good[:len(good)-1],
		"long":         append(bytes.Clone(good), 0),
		"version":      mutate(func(m []byte) []byte { m[0] = 3; return m }),
		"v1 length":    mutate(func(m []byte) []byte { m[0] = 1; return m }),
		"v2 length":    mutate(func(m []byte) []byte { return m[:receiptSizeV1] }),
		"period 0":     mutate(func(m []byte) []byte { clear(m[period : period+4]); return m }),
		"period > day": mutate(func(m []byte) []byte { binary.BigEndian.PutUint32(m[period:], 289); return m }),
		"nonce 0":      mutate(func(m []byte) []byte { m[nonce+7] = 0; return m }),
		"prev on 1":    mutate(func(m []byte) []byte { m[prev] = 1; return m }),
		"to self":      mutate(func(m []byte) []byte { copy(m[65:97], m[33:65]); return m }),
	}
	for name, b := range tests {
		if _, err := DecodeReceipt(b); !errors.Is(err, ErrMalformed) || !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	second := signedReceipt(t, a, b.DeviceID(), 2, core.Hash{1}).Encode()
	clear(second[prev : prev+32])
	if _, err := DecodeReceipt(second); !errors.Is(err, ErrMalformed) {
		t.Errorf("nonce 2 without prev: %v", err)
	}
}

// legacyReceipt is a version 1 receipt, as an older aurad signs them: no
// period, and an epoch in units of its local setting.
func legacyReceipt(t testing.TB, s journal.Signer, dst core.DeviceID, epoch core.Epoch, nonce uint64, prev core.Hash) *Receipt {
	t.Helper()
	r := &Receipt{Context: core.ContextID{7}, Src: s.DeviceID(), Dst: dst, Epoch: epoch, Cost: 3, Nonce: nonce, Prev: prev}
	r.Sig = s.Sign(signingBytes(r.Hash()))
	return r
}

// Version 1 receipts, which old audit rings hold, still decode, re-encode to
// the same bytes and verify; the version 2 encoding binds the period.
func TestLegacyReceiptDecodes(t *testing.T) {
	a, b := seededSigner(1), seededSigner(2)
	old := legacyReceipt(t, a, b.DeviceID(), 42, 1, core.Hash{})
	enc := old.Encode()
	if len(enc) != receiptSizeV1 || enc[0] != 1 {
		t.Fatalf("legacy receipt encodes as %d bytes, version %d", len(enc), enc[0])
	}
	back, err := DecodeReceipt(enc)
	if err != nil {
		t.Fatal(err)
	}
	if back.Period != 0 || !bytes.Equal(back.Encode(), enc) || back.Verify() != nil {
		t.Fatalf("legacy round trip: %+v", back)
	}
	// The same fields with a period are another receipt, with another hash;
	// the old signature does not carry over.
	v2 := *old
	v2.Period = 1
	if v2.Hash() == old.Hash() || v2.Verify() == nil {
		t.Fatal("version 2 receipt shares the version 1 hash or signature")
	}
	if err := (&Receipt{Src: a.DeviceID(), Dst: b.DeviceID(), Nonce: 1}).sign(a); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("signing without a period: %v", err)
	}
}

func TestReason(t *testing.T) {
	for _, r := range reasons {
		if got := Reason(wrap(r.err)); got != r.name {
			t.Errorf("%v: %q", r.err, got)
		}
	}
	if Reason(errors.New("x")) != "other" {
		t.Error("unknown error has a reason")
	}
}

func wrap(err error) error { return errors.Join(errors.New("ctx"), err) }
