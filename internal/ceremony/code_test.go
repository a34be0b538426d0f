package ceremony

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aura-p2p/aura/internal/core"
)

// rawOf is the binary form a code carries.
func rawOf(t *testing.T, code string) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(code, CodePrefix))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func codeOf(raw []byte) string { return CodePrefix + base64.RawURLEncoding.EncodeToString(raw) }

func TestParseCodeRoundTrip(t *testing.T) {
	key := seededKey(1)
	for _, tc := range []struct {
		name    string
		addrs   int
		message string
	}{
		{"no addresses", 0, ""},
		{"one address", 1, "hi"},
		{"max addresses", MaxCodeAddrs, "hi"},
		{"max message", 2, strings.Repeat("x", MaxMessageBytes)},
		{"multibyte message", 2, strings.Repeat("é", MaxMessageBytes/2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iv := sampleInvitation(t, key, tc.addrs, tc.message)
			code := iv.Code()
			got, err := ParseCode("  " + code + "\n")
			if err != nil {
				t.Fatalf("ParseCode: %v", err)
			}
			if got.Code() != code || got.Message != tc.message || len(got.Addrs) != tc.addrs || !got.Expires.Equal(iv.Expires) {
				t.Fatalf("round trip: got %+v, want %+v", got, iv)
			}
			if len(code) > maxCodeLen {
				t.Fatalf("a code within the limits is %d characters, over the %d a code may have", len(code), maxCodeLen)
			}
		})
	}
}

func TestParseCodeGarbled(t *testing.T) {
	good := sampleInvitation(t, seededKey(1), 2, "hi").Code()
	raw := rawOf(t, good)
	for _, tc := range []struct{ name, code string }{
		{"empty", ""},
		{"blank", "   "},
		{"not a code", "hello there"},
		{"prefix only", CodePrefix},
		{"other version prefix", strings.Replace(good, "invite1", "invite2", 1)},
		{"upper-cased prefix", strings.ToUpper(CodePrefix) + good[len(CodePrefix):]},
		{"not base64", CodePrefix + "!!!!" + good[len(CodePrefix)+4:]},
		{"standard base64 alphabet", CodePrefix + base64.StdEncoding.EncodeToString(raw)},
		{"trailing byte", codeOf(append(append([]byte(nil), raw...), 0))},
		{"space inside", good[:40] + " " + good[40:]},
		{"doubled", good + good[len(CodePrefix):]},
		{"too long", CodePrefix + strings.Repeat("A", maxCodeLen)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iv, err := ParseCode(tc.code)
			if !errors.Is(err, ErrCodeMalformed) || !errors.Is(err, core.ErrInvalidArgument) {
				t.Fatalf("ParseCode = %v, %v; want ErrCodeMalformed", iv, err)
			}
		})
	}
}

// Every prefix of a valid code is what a cut-short paste gives: each is
// refused as malformed (never as forged, which would blame the inviter).
func TestParseCodeTruncated(t *testing.T) {
	for _, addrs := range []int{0, 3} {
		code := sampleInvitation(t, seededKey(1), addrs, "see you").Code()
		for n := range len(code) {
			if _, err := ParseCode(code[:n]); !errors.Is(err, ErrCodeMalformed) {
				t.Fatalf("prefix of %d/%d characters: %v, want ErrCodeMalformed", n, len(code), err)
			}
		}
	}
}

// Changing any byte of a code (the signed part or the signature) never gives
// an accepted code.
func TestParseCodeForged(t *testing.T) {
	iv := sampleInvitation(t, seededKey(1), 2, "hi")
	raw := rawOf(t, iv.Code())
	for i := range raw {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			b := append([]byte(nil), raw...)
			b[i] ^= mask
			got, err := ParseCode(codeOf(b))
			if err == nil {
				t.Fatalf("byte %d ^ %#x: accepted %+v", i, mask, got)
			}
			if !errors.Is(err, ErrCodeForged) && !errors.Is(err, ErrCodeMalformed) {
				t.Fatalf("byte %d ^ %#x: %v, want ErrCodeForged or ErrCodeMalformed", i, mask, err)
			}
		}
	}

	// Whole-field substitutions that keep the code well formed are refused
	// as forged, by name.
	other := seededKey(9)
	for _, tc := range []struct {
		name   string
		change func(*Invitation)
	}{
		{"redirected addresses", func(v *Invitation) { v.Addrs = []string{"/ip4/203.0.113.7/tcp/4001"} }},
		{"extended expiry", func(v *Invitation) { v.Expires = v.Expires.Add(30 * 24 * time.Hour) }},
		{"swapped inviter", func(v *Invitation) { v.Inviter = deviceOf(other) }},
		{"swapped hpke key", func(v *Invitation) { v.InviterHPKE[0] ^= 1 }},
		{"changed message", func(v *Invitation) { v.Message = "send money" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := *iv
			tc.change(&v)
			if _, err := ParseCode(v.Code()); !errors.Is(err, ErrCodeForged) {
				t.Fatalf("ParseCode = %v, want ErrCodeForged", err)
			}
		})
	}
	t.Run("signed by another key", func(t *testing.T) {
		v := *iv
		if err := v.Sign(other); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseCode(v.Code()); !errors.Is(err, ErrCodeForged) {
			t.Fatalf("ParseCode = %v, want ErrCodeForged", err)
		}
	})
}

func TestInvitationLimits(t *testing.T) {
	key := seededKey(1)
	base := sampleInvitation(t, key, 1, "")
	for _, tc := range []struct {
		name   string
		change func(*Invitation)
	}{
		{"too many addresses", func(v *Invitation) {
			v.Addrs = nil
			for range MaxCodeAddrs + 1 {
				v.Addrs = append(v.Addrs, "/ip4/127.0.0.1/tcp/1")
			}
		}},
		{"empty address", func(v *Invitation) { v.Addrs = []string{""} }},
		{"over-long address", func(v *Invitation) { v.Addrs = []string{strings.Repeat("a", maxAddrLen+1)} }},
		{"over-long message", func(v *Invitation) { v.Message = strings.Repeat("x", MaxMessageBytes+1) }},
		{"over-long multibyte message", func(v *Invitation) { v.Message = strings.Repeat("é", MaxMessageBytes/2) + "x" }},
		{"message not UTF-8", func(v *Invitation) { v.Message = "\xff\xfe" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := *base
			tc.change(&v)
			// The inviter cannot make such a code...
			if err := v.Sign(key); !errors.Is(err, core.ErrInvalidArgument) {
				t.Fatalf("Sign = %v, want ErrInvalidArgument", err)
			}
			// ...and one made by hand, validly signed, is refused too.
			body := v.signed()
			code := codeOf(append(body, ed25519.Sign(key, v.digest(ContactCode()))...))
			if _, err := ParseCode(code); !errors.Is(err, ErrCodeMalformed) {
				t.Fatalf("ParseCode = %v, want ErrCodeMalformed", err)
			}
		})
	}
}

func TestParseCodeWrongVersion(t *testing.T) {
	key := seededKey(1)
	iv := sampleInvitation(t, key, 1, "")
	for _, v := range []byte{0, 2, 0xff} {
		body := iv.signed()
		body[0] = v
		h := core.TaggedHash(tagCode, body)
		sig := ed25519.Sign(key, h[:])
		_, err := ParseCode(codeOf(append(body, sig...)))
		if !errors.Is(err, ErrCodeMalformed) || !strings.Contains(err.Error(), "version") {
			t.Fatalf("version %d: %v, want ErrCodeMalformed naming the version", v, err)
		}
	}
}

func TestInvitationExpired(t *testing.T) {
	iv := sampleInvitation(t, seededKey(1), 1, "")
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{iv.Expires.Add(-time.Hour), false},
		{iv.Expires.Add(-time.Nanosecond), false},
		{iv.Expires, true},
		{iv.Expires.Add(time.Nanosecond), true},
		{iv.Expires.Add(365 * 24 * time.Hour), true},
	} {
		if got := iv.Expired(tc.at); got != tc.want {
			t.Errorf("Expired(expiry %+v) = %v, want %v", tc.at.Sub(iv.Expires), got, tc.want)
		}
	}
	// Parsing does not judge expiry: a late code is refused by name later.
	if _, err := ParseCode(iv.Code()); err != nil {
		t.Fatalf("ParseCode of an expired code: %v", err)
	}
}

func TestCheckNickname(t *testing.T) {
	for _, tc := range []struct {
		name       string
		nick       string
		mayBeEmpty bool
		ok         bool
	}{
		{"plain", "alice", false, true},
		{"spaces and unicode", "Zoë Ç 🙂", false, true},
		{"max length", strings.Repeat("n", MaxNicknameLen), false, true},
		{"max length multibyte", strings.Repeat("é", MaxNicknameLen/2), false, true},
		{"empty allowed", "", true, true},
		{"empty refused", "", false, false},
		{"over-long", strings.Repeat("n", MaxNicknameLen+1), false, false},
		{"over-long multibyte", strings.Repeat("é", MaxNicknameLen/2) + "x", true, false},
		{"not UTF-8", "al\xffce", false, false},
		{"NUL", "a\x00b", false, false},
		{"tab", "a\tb", false, false},
		{"newline", "alice\n", false, false},
		{"escape", "\x1b[31mred", false, false},
		{"DEL", "a\x7fb", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckNickname(tc.nick, tc.mayBeEmpty)
			if tc.ok && err != nil {
				t.Fatalf("CheckNickname(%q) = %v, want ok", tc.nick, err)
			}
			if !tc.ok && !errors.Is(err, core.ErrInvalidArgument) {
				t.Fatalf("CheckNickname(%q) = %v, want ErrInvalidArgument", tc.nick, err)
			}
		})
	}
}

// C1 control characters are control characters too: U+009B is a
// single-character CSI that terminals honour, so a nickname can carry escape
// sequences into `auractl contact list`.
func TestCheckNicknameC1Controls(t *testing.T) {
	for _, nick := range []string{"a\u0085b", "\u009b31mred", "a\u0080"} {
		if err := CheckNickname(nick, false); !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("CheckNickname(%q) = %v, want ErrInvalidArgument", nick, err)
		}
	}
}

// A detail longer than its field (an error's text) is cut, not refused, and
// what is stored decodes again.
func TestLongAbortDetailIsClipped(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes
	a := &Abort{Operation: OperationContact, Reason: ReasonSession, Detail: long}
	got, err := DecodeAbort(a.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Detail) > maxReasonLen || !strings.HasSuffix(got.Detail, "…") || !utf8.ValidString(got.Detail) {
		t.Fatalf("clipped detail %q (%d bytes)", got.Detail, len(got.Detail))
	}
	r := &Record{State: CeremonyAborted, Detail: long}
	if _, err := decodeRecord(r.encode()); err != nil {
		t.Fatalf("a record with a long detail does not decode: %v", err)
	}
}

// A code of one kind is refused by the other kind's parser, by prefix and
// by signature tag: the prefix alone swapped does not make it the other.
func TestCodeKinds(t *testing.T) {
	key := seededKey(1)
	iv := sampleInvitation(t, key, 1, "")
	device := *iv
	if err := device.SignAs(DeviceCode(), key); err != nil {
		t.Fatal(err)
	}
	if got, err := ParseCodeAs(DeviceCode(), device.CodeAs(DeviceCode())); err != nil || got.ID != iv.ID {
		t.Fatalf("device code round trip: %v", err)
	}
	if _, err := ParseCodeAs(DeviceCode(), iv.Code()); !errors.Is(err, ErrCodeMalformed) {
		t.Errorf("contact code as a device code: %v", err)
	}
	if _, err := ParseCode(device.CodeAs(DeviceCode())); !errors.Is(err, ErrCodeMalformed) {
		t.Errorf("device code as a contact code: %v", err)
	}
	relabelled := DeviceCodePrefix + strings.TrimPrefix(iv.Code(), CodePrefix)
	if _, err := ParseCodeAs(DeviceCode(), relabelled); !errors.Is(err, ErrCodeForged) {
		t.Errorf("contact code relabelled as a device code: %v", err)
	}
}
