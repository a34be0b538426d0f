package wot

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

// Every decoder accepts only canonical bytes, so decode → encode must give
// the input back byte for byte, and decoding that again the same value.

func FuzzDecodeTrustEdge(f *testing.F) {
	f.Add(TrustEdge{From: dev(1), To: dev(2), Level: LevelHigh, Seq: 7}.Encode())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeTrustEdge(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatalf("re-encoding differs")
		}
		if e2, err := DecodeTrustEdge(e.Encode()); err != nil || e2 != e {
			t.Fatalf("second decode: %+v %v", e2, err)
		}
	})
}

func FuzzDecodeEndorsement(f *testing.F) {
	f.Add(Endorsement{Edge: TrustEdge{From: dev(1), To: dev(2), Level: LevelLow, Seq: 1}, Withdrawn: true}.Encode())
	f.Add([]byte{1, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeEndorsement(b)
		if err != nil {
			return
		}
		if !bytes.Equal(n.Encode(), b) {
			t.Fatalf("re-encoding differs")
		}
		if n2, err := DecodeEndorsement(n.Encode()); err != nil || n2 != n {
			t.Fatalf("second decode: %+v %v", n2, err)
		}
	})
}

func FuzzDecodeRevocation(f *testing.F) {
	f.Add(Revocation{Issuer: core.AuthorityID{1}, Block: core.Hash{2}}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRevocation(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatalf("re-encoding differs")
		}
		if r2, err := DecodeRevocation(r.Encode()); err != nil || r2 != r {
			t.Fatalf("second decode: %+v %v", r2, err)
		}
	})
}

func FuzzDecodeToken(f *testing.F) {
	fx := newFixture(f, 0)
	ks := keysN(3)
	f.Add(fx.chain(f, ks).Encode())
	scoped, err := fx.root(f, ks[0], caps(f, "a", "b"), AnyScope(), 5).Attenuate(ks[0], Grant{Holder: holderOf(ks[1]), Caps: caps(f, "a"), Scope: ctxScope(3), NotAfter: 4}, rand.NewChaCha8([32]byte{}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(scoped.Encode())
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := DecodeToken(b)
		if err != nil {
			return
		}
		enc := encodeToken(tok.blocks)
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, enc)
		}
		tok2, err := DecodeToken(enc)
		if err != nil || tok2.Hash() != tok.Hash() || len(tok2.blocks) != len(tok.blocks) {
			t.Fatalf("second decode: %v", err)
		}
		for i := range tok.blocks {
			if tok.blocks[i].ID != tok2.blocks[i].ID || !tok.blocks[i].Caps.Equal(tok2.blocks[i].Caps) {
				t.Fatalf("block %d differs after round trip", i)
			}
		}
	})
}
