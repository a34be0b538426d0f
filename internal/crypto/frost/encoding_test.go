package frost

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// codec is one wire type: how to get a fresh value to decode into.
type codec struct {
	name string
	new  func() interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	}
}

var codecs = []codec{
	{"Signature", func() interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	} {
		return new(Signature)
	}},
	{"SigningCommitment", func() interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	} {
		return new(SigningCommitment)
	}},
	{"SigningPackage", func() interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	} {
		return new(SigningPackage)
	}},
	{"SignatureShare", func() interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	} {
		return new(SignatureShare)
	}},
	{"KeyPackage", func() interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	} {
		return new(KeyPackage)
	}},
	{"PublicKeyPackage", func() interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	} {
		return new(PublicKeyPackage)
	}},
	{"SecretShare", func() interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	} {
		return new(SecretShare)
	}},
	{"VSSCommitment", func() interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	} {
		return new(VSSCommitment)
	}},
	{"Round1Package", func() interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	} {
		return new(Round1Package)
	}},
	{"Round2Package", func() interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	} {
		return new(Round2Package)
	}},
}

func codecByName(name string) codec {
	for _, c := range codecs {
		if c.name == name {
			return c
		}
	}
	panic(name)
}

// samples returns valid encodings of every wire type from one deterministic
// 3-of-4 dealer key, signing session, DKG and refresh.
func samples() map[string][][]byte {
	rng := testRand(1234)
	out := map[string][][]byte{}
	add := func(name string, v encoding.BinaryMarshaler) {
		out[name] = append(out[name], must(v.MarshalBinary()))
	}
	shares, pub, err := TrustedDealerKeygen(rng, 3, 4)
	if err != nil {
		panic(err)
	}
	keys := make([]*KeyPackage, len(shares))
	for i, s := range shares {
		keys[i] = must(s.Verify())
		add("SecretShare", s)
		add("KeyPackage", keys[i])
	}
	add("VSSCommitment", shares[0].Commitment())
	add("PublicKeyPackage", pub)
	var comms []*SigningCommitment
	var nonces []*SigningNonces
	for _, k := range keys[1:] {
		n := must(Commit(rng, k))
		nonces = append(nonces, n)
		comms = append(comms, n.Commitment())
		add("SigningCommitment", n.Commitment())
	}
	for _, msg := range [][]byte{nil, []byte("hello")} {
		add("SigningPackage", must(NewSigningPackage(comms, msg)))
	}
	pkg := must(NewSigningPackage(comms, []byte("hello")))
	var sigShares []*SignatureShare
	for i, k := range keys[1:] {
		s := must(Sign(k, nonces[i], pkg))
		sigShares = append(sigShares, s)
		add("SignatureShare", s)
	}
	add("Signature", must(Aggregate(pub, pkg, sigShares)))

	for _, refresh := range []bool{false, true} {
		parts := make([]*DKGParticipant, 4)
		r1 := make([]*Round1Package, 4)
		for i := range parts {
			if refresh {
				parts[i] = must(NewRefresh(rng, keys[i], pub))
			} else {
				parts[i] = must(NewDKG(rng, Identifier(i+1), 3, 4))
			}
			r1[i] = must(parts[i].Round1())
			add("Round1Package", r1[i])
		}
		for _, m := range must(parts[0].Round2(r1[1:])) {
			add("Round2Package", m)
		}
	}
	return out
}

func TestEncodingRoundTrip(t *testing.T) {
	for name, encs := range samples() {
		c := codecByName(name)
		for _, enc := range encs {
			v := c.new()
			if err := v.UnmarshalBinary(enc); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := must(v.MarshalBinary()); !bytes.Equal(got, enc) {
				t.Fatalf("%s: re-encoding differs", name)
			}
		}
	}
}

// decodeFails asserts that b is rejected with ErrInvalidEncoding (or, for key
// packages, ErrKeyMismatch) and without panicking.
func decodeFails(t *testing.T, c codec, what string, b []byte, want error) {
	t.Helper()
	err := c.new().UnmarshalBinary(b)
	if err == nil {
		t.Errorf("%s %s: accepted", c.name, what)
		return
	}
	if !errors.Is(err, want) {
		t.Errorf("%s %s: got %v, want %v", c.name, what, err, want)
	}
}

var (
	identityEnc  = make([]byte, 32) // ristretto255 identity
	scalarL      = []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	scalarMax    = bytes.Repeat([]byte{0xff}, 32)
	badElement   = append([]byte{1}, make([]byte, 31)...) // odd s: not canonical
	bigElemNonCa = bytes.Repeat([]byte{0xff}, 32)         // s ≥ p
)

func splice(b []byte, off int, with []byte) []byte {
	out := slices.Clone(b)
	copy(out[off:], with)
	return out
}

// layout lists, per wire type, the offsets of element and scalar slots in
// the first sample, and of identifiers.
var layouts = map[string]struct{ elements, scalars, ids []int }{
	"Signature":         {elements: []int{0}, scalars: []int{32}},
	"SigningCommitment": {elements: []int{2, 34}, ids: []int{0}},
	"SignatureShare":    {scalars: []int{2}, ids: []int{0}},
	"KeyPackage":        {elements: []int{36, 68}, scalars: []int{4}, ids: []int{0}},
	"PublicKeyPackage":  {elements: []int{2, 38}, ids: []int{36}},
	"SecretShare":       {elements: []int{36}, scalars: []int{2}, ids: []int{0}},
	"VSSCommitment":     {elements: []int{2, 34}},
	"Round1Package":     {elements: []int{5, 37}, ids: []int{1}},
	"Round2Package":     {scalars: []int{4}, ids: []int{0, 2}},
	"SigningPackage":    {elements: []int{4, 36}, ids: []int{2}},
}

func TestMalformedEncodings(t *testing.T) {
	all := samples()
	for _, c := range codecs {
		enc := all[c.name][0]
		lay := layouts[c.name]
		for _, off := range lay.elements {
			decodeFails(t, c, fmt.Sprintf("identity at %d", off), splice(enc, off, identityEnc), ErrIdentityElement)
			decodeFails(t, c, fmt.Sprintf("non-canonical element at %d", off), splice(enc, off, badElement), ErrInvalidEncoding)
			decodeFails(t, c, fmt.Sprintf("element ≥ p at %d", off), splice(enc, off, bigElemNonCa), ErrInvalidEncoding)
		}
		for _, off := range lay.scalars {
			decodeFails(t, c, fmt.Sprintf("scalar = L at %d", off), splice(enc, off, scalarL), ErrNonCanonicalScalar)
			decodeFails(t, c, fmt.Sprintf("scalar = 2^256-1 at %d", off), splice(enc, off, scalarMax), ErrNonCanonicalScalar)
		}
		for _, off := range lay.ids {
			decodeFails(t, c, fmt.Sprintf("identifier 0 at %d", off), splice(enc, off, []byte{0, 0}), ErrInvalidIdentifier)
		}
		for n := range len(enc) {
			decodeFails(t, c, fmt.Sprintf("truncated to %d", n), enc[:n], ErrInvalidEncoding)
		}
		decodeFails(t, c, "trailing byte", append(slices.Clone(enc), 0), ErrInvalidEncoding)
	}
}

func TestMalformedLists(t *testing.T) {
	all := samples()
	sp := codecByName("SigningPackage")
	pkgEnc := all["SigningPackage"][1] // 3 commitments, message "hello"
	c0 := pkgEnc[2 : 2+commitmentSize]
	c1 := pkgEnc[2+commitmentSize : 2+2*commitmentSize]
	swapped := slices.Clone(pkgEnc)
	copy(swapped[2:], c1)
	copy(swapped[2+commitmentSize:], c0)
	decodeFails(t, sp, "reordered commitments", swapped, ErrUnsorted)
	dup := slices.Clone(pkgEnc)
	copy(dup[2+commitmentSize:], c0)
	decodeFails(t, sp, "duplicate commitment", dup, ErrDuplicateIdentifier)
	decodeFails(t, sp, "empty list", []byte{0, 0, 0, 0, 0, 0}, ErrInvalidEncoding)
	long := slices.Clone(pkgEnc)
	binary.BigEndian.PutUint32(long[len(long)-9:], 6) // message length past the end
	decodeFails(t, sp, "message length", long, ErrInvalidEncoding)
	short := slices.Clone(pkgEnc)
	binary.BigEndian.PutUint32(short[len(short)-9:], 4)
	decodeFails(t, sp, "message length", short, ErrInvalidEncoding)
	count := slices.Clone(pkgEnc)
	binary.BigEndian.PutUint16(count, 4)
	decodeFails(t, sp, "count", count, ErrInvalidEncoding)

	pp := codecByName("PublicKeyPackage")
	pubEnc := all["PublicKeyPackage"][0] // t=3, 4 shares
	entry := func(i int) []byte { o := 36 + i*(identSize+elementSize); return pubEnc[o : o+identSize+elementSize] }
	sw := slices.Clone(pubEnc)
	copy(sw[36:], entry(1))
	copy(sw[36+identSize+elementSize:], entry(0))
	decodeFails(t, pp, "reordered shares", sw, ErrUnsorted)
	dp := slices.Clone(pubEnc)
	copy(dp[36+identSize+elementSize:], entry(0))
	decodeFails(t, pp, "duplicate share", dp, ErrDuplicateIdentifier)
	low := slices.Clone(pubEnc)
	binary.BigEndian.PutUint16(low, 5) // threshold above n
	decodeFails(t, pp, "threshold > n", low, ErrInvalidEncoding)
	zero := slices.Clone(pubEnc)
	binary.BigEndian.PutUint16(zero, 0)
	decodeFails(t, pp, "threshold 0", zero, ErrInvalidEncoding)

	r1 := codecByName("Round1Package")
	kind := slices.Clone(all["Round1Package"][0])
	kind[0] = 9
	decodeFails(t, r1, "unknown kind", kind, ErrInvalidEncoding)
	r2 := codecByName("Round2Package")
	self := slices.Clone(all["Round2Package"][0])
	copy(self[2:4], self[0:2])
	decodeFails(t, r2, "sender = receiver", self, ErrInvalidEncoding)

	vss := codecByName("VSSCommitment")
	decodeFails(t, vss, "empty", []byte{0, 0}, ErrInvalidEncoding)

	kp := codecByName("KeyPackage")
	kt := slices.Clone(all["KeyPackage"][0])
	kt[2], kt[3] = 0, 0
	decodeFails(t, kp, "threshold 0", kt, ErrInvalidEncoding)
}

func TestParseRejects(t *testing.T) {
	_, err := ParsePublicKey(identityEnc)
	wantErr(t, err, ErrIdentityElement)
	_, err = ParsePublicKey(make([]byte, 31))
	wantErr(t, err, ErrInvalidEncoding)
	pk := unhex(t, rfcVector.groupPublicKey)
	sig := unhex(t, rfcVector.signature)
	msg := unhex(t, rfcVector.message)
	wantErr(t, Verify(pk, msg, sig[:63]), ErrInvalidEncoding)
	wantErr(t, Verify(pk, msg, append(slices.Clone(identityEnc), sig[32:]...)), ErrIdentityElement)
	wantErr(t, Verify(pk, msg, append(slices.Clone(sig[:32]), scalarL...)), ErrNonCanonicalScalar)
	// z + L would verify if the decoder reduced instead of rejecting.
	wantErr(t, Verify(identityEnc, msg, sig), ErrIdentityElement)
	_, _, err = SplitSecret(nil, scalarL, 2, 3)
	wantErr(t, err, ErrNonCanonicalScalar)
	_, _, err = SplitSecret(nil, make([]byte, 32), 2, 3)
	wantErr(t, err, ErrInvalidEncoding)
	_, _, err = TrustedDealerKeygen(nil, 3, 2)
	wantErr(t, err, ErrInvalidParameters)
	_, _, err = TrustedDealerKeygen(nil, 0, 2)
	wantErr(t, err, ErrInvalidParameters)
	_, _, err = TrustedDealerKeygen(nil, 2, 1<<16)
	wantErr(t, err, ErrInvalidParameters)
	_, err = randomScalar(bytes.NewReader(nil))
	wantErr(t, err, ErrRandomness)
	_, _, err = TrustedDealerKeygen(zeroReader{}, 2, 3)
	wantErr(t, err, ErrRandomness)
	solo, _ := dealerKeys(t, nil, 1, 1)
	_, err = Commit(&failingReader{}, solo[0])
	wantErr(t, err, ErrRandomness)
}

// fuzzDecoder is the shared body of the fuzz targets: decoding never panics,
// fails only with the package's sentinels, and whatever it accepts
// re-encodes to the same bytes (canonical encoding).
func fuzzDecoder(f *testing.F, name string) {
	c := codecByName(name)
	for _, enc := range samples()[name] {
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
		f.Add(append(slices.Clone(enc), 0))
	}
	f.Add([]byte{})
	f.Add(identityEnc)
	f.Add(scalarL)
	f.Fuzz(func(t *testing.T, b []byte) {
		v := c.new()
		if err := v.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrInvalidEncoding) && !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		enc, err := v.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("non-canonical: %x re-encodes as %x", b, enc)
		}
	})
}

func FuzzSignature(f *testing.F)         { fuzzDecoder(f, "Signature") }
func FuzzSigningCommitment(f *testing.F) { fuzzDecoder(f, "SigningCommitment") }
func FuzzSigningPackage(f *testing.F)    { fuzzDecoder(f, "SigningPackage") }
func FuzzSignatureShare(f *testing.F)    { fuzzDecoder(f, "SignatureShare") }
func FuzzKeyPackage(f *testing.F)        { fuzzDecoder(f, "KeyPackage") }
func FuzzPublicKeyPackage(f *testing.F)  { fuzzDecoder(f, "PublicKeyPackage") }
func FuzzSecretShare(f *testing.F)       { fuzzDecoder(f, "SecretShare") }
func FuzzVSSCommitment(f *testing.F)     { fuzzDecoder(f, "VSSCommitment") }
func FuzzRound1Package(f *testing.F)     { fuzzDecoder(f, "Round1Package") }
func FuzzRound2Package(f *testing.F)     { fuzzDecoder(f, "Round2Package") }

func FuzzPublicKey(f *testing.F) {
	f.Add(unhex(f, rfcVector.groupPublicKey))
	f.Add(identityEnc)
	f.Add(badElement)
	f.Fuzz(func(t *testing.T, b []byte) {
		pk, err := ParsePublicKey(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidEncoding) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(pk.Bytes(), b) {
			t.Fatal("non-canonical public key accepted")
		}
	})
}

// FuzzVerify: arbitrary key, message and signature bytes never panic and a
// mutated RFC signature never verifies.
func FuzzVerify(f *testing.F) {
	pk := unhex(f, rfcVector.groupPublicKey)
	sig := unhex(f, rfcVector.signature)
	f.Add(pk, []byte("test"), sig)
	f.Add(pk, []byte("tesT"), sig)
	f.Add(identityEnc, []byte{}, make([]byte, 64))
	f.Fuzz(func(t *testing.T, pkb, msg, sigb []byte) {
		err := Verify(pkb, msg, sigb)
		if err == nil && !(bytes.Equal(pkb, pk) && bytes.Equal(msg, []byte("test")) && bytes.Equal(sigb, sig)) {
			// Other valid triples exist only if someone forged one.
			t.Fatalf("unexpected valid signature: %x %x %x", pkb, msg, sigb)
		}
	})
}

// Zero values of the exported types are rejected with errors, not panics.
func TestZeroValues(t *testing.T) {
	for _, c := range codecs {
		if _, err := c.new().MarshalBinary(); !errors.Is(err, ErrInvalidEncoding) {
			t.Errorf("%s zero value: %v", c.name, err)
		}
	}
	rng := testRand(77)
	keys, pub := dealerKeys(t, rng, 2, 2)
	n := must(Commit(rng, keys[0]))
	pkg := must(NewSigningPackage([]*SigningCommitment{n.Commitment(), must(Commit(rng, keys[1])).Commitment()}, nil))
	_, err := Commit(rng, &KeyPackage{})
	wantErr(t, err, ErrKeyMismatch)
	_, err = Sign(keys[0], &SigningNonces{}, pkg)
	wantErr(t, err, ErrMissingCommitment)
	_, err = Sign(&KeyPackage{}, n, pkg)
	wantErr(t, err, ErrInvalidMessage)
	_, err = Aggregate(&PublicKeyPackage{}, pkg, nil)
	wantErr(t, err, ErrInvalidMessage)
	_, err = Aggregate(pub, &SigningPackage{}, nil)
	wantErr(t, err, ErrTooFewSigners)
	wantErr(t, VerifySignatureShare(&PublicKeyPackage{}, pkg, &SignatureShare{}), ErrInvalidMessage)
	wantErr(t, (&PublicKey{}).Verify(nil, &Signature{}), ErrInvalidSignature)
	wantErr(t, pub.PublicKey().Verify(nil, &Signature{}), ErrInvalidSignature)
	_, err = (&SecretShare{}).Verify()
	wantErr(t, err, ErrInvalidIdentifier)
	_, err = NewRefresh(rng, &KeyPackage{}, pub)
	wantErr(t, err, ErrKeyMismatch)
	if (&VSSCommitment{}).PublicKey() != nil {
		t.Error("zero VSSCommitment has a public key")
	}
	p := must(NewDKG(rng, 1, 2, 2))
	must(p.Round1())
	_, err = p.Round2([]*Round1Package{{}})
	wantErr(t, err, ErrUnknownParticipant)
}

// A public key package whose verifying shares are not on one degree t-1
// polynomial through the group key is refused at decoding: otherwise
// Aggregate would blame honest signers.
func TestPublicKeyPackageConsistency(t *testing.T) {
	rng := testRand(88)
	for _, tn := range [][2]int{{1, 1}, {1, 3}, {2, 3}, {3, 5}} {
		_, pub := dealerKeys(t, rng, tn[0], tn[1])
		enc := must(pub.MarshalBinary())
		var ok PublicKeyPackage
		if err := ok.UnmarshalBinary(enc); err != nil {
			t.Fatalf("%v: %v", tn, err)
		}
		gen := elementBytes(g.Generator())
		for i := range tn[1] {
			bad := splice(enc, 38+i*(identSize+elementSize), gen)
			decodeFails(t, codecByName("PublicKeyPackage"), fmt.Sprintf("%v share %d replaced", tn, i+1), bad, ErrKeyMismatch)
		}
		decodeFails(t, codecByName("PublicKeyPackage"), fmt.Sprintf("%v group key replaced", tn), splice(enc, 2, gen), ErrKeyMismatch)
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

type failingReader struct{}

func (*failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy gone") }
