package ceremony

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

func TestSealOpenRoot(t *testing.T) {
	priv, pub := seededHPKE(t, 1)
	otherPriv, _ := seededHPKE(t, 2)
	var root [RootSize]byte
	fill(root[:], 9)
	cer := core.Hash{1, 2, 3}
	sealed, err := sealRoot(rand.Reader, pub, root, cer)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) > maxSealedLen {
		t.Fatalf("sealed root of %d bytes does not fit a commit (%d)", len(sealed), maxSealedLen)
	}
	got, err := openRoot(priv, sealed, cer)
	if err != nil || got != root {
		t.Fatalf("openRoot = %x, %v; want %x", got, err, root)
	}
	// Sealing is randomized: the same root sealed twice differs.
	again, err := sealRoot(rand.Reader, pub, root, cer)
	if err != nil || bytes.Equal(again, sealed) {
		t.Fatalf("second seal equal to the first (%v)", err)
	}

	flipped := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	for _, tc := range []struct {
		name   string
		open   func() ([RootSize]byte, error)
		wantIs error
	}{
		{"other ceremony", func() ([RootSize]byte, error) { return openRoot(priv, sealed, core.Hash{1, 2, 4}) }, core.ErrPermissionDenied},
		{"other key", func() ([RootSize]byte, error) { return openRoot(otherPriv, sealed, cer) }, core.ErrPermissionDenied},
		{"tampered ciphertext", func() ([RootSize]byte, error) { return openRoot(priv, flipped(len(sealed)-1), cer) }, core.ErrPermissionDenied},
		{"tampered encapsulation", func() ([RootSize]byte, error) { return openRoot(priv, flipped(0), cer) }, nil},
		{"short", func() ([RootSize]byte, error) { return openRoot(priv, sealed[:len(sealed)-1], cer) }, core.ErrInvalidArgument},
		{"long", func() ([RootSize]byte, error) { return openRoot(priv, append(bytes.Clone(sealed), 0), cer) }, core.ErrInvalidArgument},
		{"empty", func() ([RootSize]byte, error) { return openRoot(priv, nil, cer) }, core.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.open()
			if err == nil {
				t.Fatalf("opened: %x", got)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Fatalf("err = %v, want %v", err, tc.wantIs)
			}
			if got != ([RootSize]byte{}) {
				t.Fatalf("a refused open returned key material: %x", got)
			}
		})
	}
	if _, err := sealRoot(rand.Reader, []byte{1, 2, 3}, root, cer); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("sealRoot to a malformed key: %v", err)
	}
}

func TestWrapUnwrap(t *testing.T) {
	w, err := newWrapper(seededKey(1))
	if err != nil {
		t.Fatal(err)
	}
	other, err := newWrapper(seededKey(2))
	if err != nil {
		t.Fatal(err)
	}
	var root [RootSize]byte
	fill(root[:], 5)
	c := core.ContextID{7}
	b, err := w.wrap(rand.Reader, c, root)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, root[:]) {
		t.Fatal("wrapped root contains the root in clear")
	}
	if got, err := w.unwrap(c, b); err != nil || got != root {
		t.Fatalf("unwrap = %x, %v; want %x", got, err, root)
	}
	// A wrapper rebuilt from the same device key opens it (a restart).
	again, _ := newWrapper(seededKey(1))
	if got, err := again.unwrap(c, b); err != nil || got != root {
		t.Fatalf("unwrap after restart = %x, %v", got, err)
	}

	for _, tc := range []struct {
		name string
		w    *wrapper
		ctx  core.ContextID
		b    func() []byte
	}{
		{"other context", w, core.ContextID{8}, func() []byte { return b }},
		{"other device key", other, c, func() []byte { return b }},
		{"version", w, c, func() []byte { x := bytes.Clone(b); x[0] = 2; return x }},
		{"nonce", w, c, func() []byte { x := bytes.Clone(b); x[1] ^= 1; return x }},
		{"ciphertext", w, c, func() []byte { x := bytes.Clone(b); x[20] ^= 1; return x }},
		{"tag", w, c, func() []byte { x := bytes.Clone(b); x[len(x)-1] ^= 1; return x }},
		{"truncated", w, c, func() []byte { return b[:len(b)-1] }},
		{"extended", w, c, func() []byte { return append(bytes.Clone(b), 0) }},
		{"empty", w, c, func() []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.w.unwrap(tc.ctx, tc.b())
			if !errors.Is(err, core.ErrDataLoss) {
				t.Fatalf("unwrap = %x, %v; want ErrDataLoss", got, err)
			}
			if got != ([RootSize]byte{}) {
				t.Fatalf("a refused unwrap returned key material: %x", got)
			}
		})
	}
}

func TestContextKey(t *testing.T) {
	var root, root2 [RootSize]byte
	fill(root[:], 1)
	fill(root2[:], 2)
	type in struct {
		root    [RootSize]byte
		purpose string
		epoch   uint64
	}
	inputs := []in{
		{root, "chat", 0}, {root, "chat", 1}, {root, "chat", 1 << 40}, {root, "files", 0},
		{root, "", 0}, {root, "chat\x00", 0}, {root, "cha", 0}, {root2, "chat", 0},
	}
	seen := map[[32]byte]in{}
	for _, x := range inputs {
		k, err := ContextKey(x.root, x.purpose, x.epoch)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ContextKey(x.root, x.purpose, x.epoch)
		if err != nil || again != k {
			t.Fatalf("ContextKey(%q, %d) not deterministic", x.purpose, x.epoch)
		}
		if k == ([32]byte{}) || k == x.root {
			t.Fatalf("ContextKey(%q, %d) = %x", x.purpose, x.epoch, k)
		}
		if prev, dup := seen[k]; dup {
			t.Fatalf("ContextKey(%q, %d) equals ContextKey(%q, %d)", x.purpose, x.epoch, prev.purpose, prev.epoch)
		}
		seen[k] = x
	}
}
