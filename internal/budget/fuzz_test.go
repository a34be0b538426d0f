package budget

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

// Every decoder of network or disk bytes is fuzzed: no panic, errors wrap the
// right sentinel, and whatever decodes re-encodes to exactly the input (one
// encoding per value).

func FuzzDecodeReceipt(f *testing.F) {
	a, b := seededSigner(1), seededSigner(2)
	r1 := signedReceipt(f, a, b.DeviceID(), 1, core.Hash{})
	f.Add(r1.Encode())
	f.Add(signedReceipt(f, a, b.DeviceID(), 2, r1.Hash()).Encode())
	f.Add(legacyReceipt(f, a, b.DeviceID(), 42, 1, core.Hash{}).Encode())
	f.Add([]byte{})
	f.Add(make([]byte, ReceiptSize))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := DecodeReceipt(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(r.Encode(), in) {
			t.Fatal("re-encoding differs")
		}
		// Verify must not panic on anything that decodes; a verifying
		// receipt's bytes are the signed ones.
		if err := r.Verify(); err == nil && r.Src != a.DeviceID() {
			t.Fatalf("receipt verifies for an unknown key %s", r.Src)
		}
	})
}

func FuzzDecodeStoredRecords(f *testing.F) {
	f.Add(sendRecord{class: core.ClassLink, epoch: 3, period: 12, spent: 9, nonce: 2, cost: 4, head: core.Hash{1}}.encode())
	f.Add(sendRecord{class: core.ClassGroup, epoch: 4, period: 1}.encode())
	f.Add(encodeSendRecordV1(sendRecordV1{class: core.ClassLink, epoch: 3, spent: 9, nonce: 2, head: core.Hash{1}}))
	f.Add(recvRecord{class: core.ClassContact, received: 5, nonce: 1, head: core.Hash{2}}.encode())
	f.Add(recvRecord{class: core.ClassContact, received: 5, nonce: 3, head: core.Hash{2}, unchecked: 2}.encode())
	f.Add(encodeRecvRecordV1(recvRecord{class: core.ClassContact, received: 5, nonce: 1, head: core.Hash{2}}))
	f.Add(leakRecord{class: core.ClassGroup, epoch: 7, consumed: core.Leakage{1, 2, 3}}.encode())
	f.Add(encodeLimit(42))
	f.Fuzz(func(t *testing.T, in []byte) {
		check := func(name string, err error, enc func() []byte) {
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: error does not wrap ErrCorrupt: %v", name, err)
				}
				return
			}
			if !bytes.Equal(enc(), in) {
				t.Fatalf("%s: re-encoding differs", name)
			}
		}
		s, err := decodeSendRecord(in)
		check("send", err, s.encode)
		s1, err := decodeSendRecordV1(in)
		check("layout-1 send", err, func() []byte { return encodeSendRecordV1(s1) })
		r, err := decodeRecvRecord(in)
		check("recv", err, func() []byte {
			if len(in) == recvRecordLenV1 {
				return encodeRecvRecordV1(r)
			}
			return r.encode()
		})
		l, err := decodeLeakRecord(in)
		check("leak", err, l.encode)
		lim, err := decodeLimit(in)
		check("limit", err, func() []byte { return encodeLimit(lim) })
		if k, err := parseKey(in); err == nil && !bytes.Equal(keyBytes(k), in) {
			t.Fatal("key re-encoding differs")
		}
		if k, e, err := parseRecvKey(in); err == nil && !bytes.Equal(recvKey(k, e), in) {
			t.Fatal("receive key re-encoding differs")
		}
	})
}

func FuzzDecodeSummaries(f *testing.F) {
	s := EpochSummary{Context: core.ContextID{1}, Src: core.DeviceID{2}, Dst: core.DeviceID{3}, Epoch: 4, Count: 5, Total: 6, LastNonce: 5, LastHash: core.Hash{7}}
	f.Add(s.Encode())
	ls := LeakageSummary{Context: core.ContextID{1}, Epoch: 2, Consumed: core.Leakage{3, 4, 5}}
	f.Add(ls.Encode())
	f.Fuzz(func(t *testing.T, in []byte) {
		if s, err := DecodeEpochSummary(in); err != nil {
			if !errors.Is(err, core.ErrInvalidArgument) {
				t.Fatalf("epoch summary: %v", err)
			}
		} else if !bytes.Equal(s.Encode(), in) {
			t.Fatal("epoch summary re-encoding differs")
		}
		if s, err := DecodeLeakageSummary(in); err != nil {
			if !errors.Is(err, core.ErrInvalidArgument) {
				t.Fatalf("leakage summary: %v", err)
			}
		} else if !bytes.Equal(s.Encode(), in) {
			t.Fatal("leakage summary re-encoding differs")
		}
	})
}
