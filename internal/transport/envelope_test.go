package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aura-p2p/aura/internal/core"
)

func sampleEnvelope() *Envelope {
	return &Envelope{
		Context: core.ContextID{1}, Src: core.DeviceID{2}, Dst: core.DeviceID{3},
		Epoch: 7, Seq: 9, Cost: 1, Protocol: "/aura/ping/1", Type: "ping", Receipt: []byte("receipt"), Payload: []byte("payload"),
	}
}

func sampleClaim() *Envelope {
	e := sampleEnvelope()
	e.Capability = "transport:ping"
	return e
}

func sampleToken() *Envelope {
	e := sampleClaim()
	e.Token = []byte("token bytes")
	return e
}

// Version 4 leaves the two ends out and keeps everything else, the
// capability and the token when set; the receiver takes the ends from the
// stream.
func TestEnvelopeV4(t *testing.T) {
	for name, e := range map[string]*Envelope{"no capability": sampleEnvelope(), "capability": sampleClaim(), "token": sampleToken()} {
		t.Run(name, func(t *testing.T) {
			b := e.EncodeV4()
			if full := e.Encode(); len(full)-len(b) != 2*(2+32) {
				t.Fatalf("version 4 is %d bytes, the full envelope %d", len(b), len(full))
			}
			got, err := DecodeEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			if !got.V4() || got.Src != (core.DeviceID{}) || got.Dst != (core.DeviceID{}) {
				t.Fatalf("decoded %+v", got)
			}
			if !bytes.Equal(got.Encode(), b) {
				t.Fatalf("round trip: %+v", got)
			}
		})
	}
	tokenOnly := sampleToken()
	tokenOnly.Capability = ""
	for name, b := range map[string][]byte{
		"with src and dst":          append([]byte{0x08, 0x04}, sampleEnvelope().Encode()[2:]...),
		"token without capability":  tokenOnly.EncodeV4(),
		"empty capability":          append(sampleEnvelope().EncodeV4(), 0x62, 0x00),
		"empty token":               append(sampleClaim().EncodeV4(), 0x6a, 0x00),
		"trailing after the token":  append(sampleToken().EncodeV4(), 0),
		"capability after a token":  append(sampleToken().EncodeV4(), 0x62, 0x01, 'x'),
		"version 4 read as version": append([]byte{0x08, 0x05}, sampleEnvelope().EncodeV4()[2:]...),
	} {
		if _, err := DecodeEnvelope(b); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for name, e := range map[string]*Envelope{"no capability": sampleEnvelope(), "capability": sampleClaim(), "token": sampleToken()} {
		t.Run(name, func(t *testing.T) {
			b := e.Encode()
			got, err := DecodeEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Encode(), b) || got.Type != "ping" || got.Seq != 9 || string(got.Payload) != "payload" || got.Capability != e.Capability || !bytes.Equal(got.Token, e.Token) {
				t.Fatalf("round trip: %+v", got)
			}
		})
	}
}

// An envelope without a capability is encoded exactly as before capabilities
// travelled (version 1, no capability field), so older peers keep reading it;
// one with a capability is version 2 and ends with the capability field.
func TestEnvelopeCapabilityEncoding(t *testing.T) {
	// The version 1 encoding of sampleEnvelope, as written before field 12.
	v1 := []byte{0x08, 0x01, 0x12, 0x20, 0x01}
	v1 = append(v1, make([]byte, 31)...)
	v1 = append(v1, 0x1a, 0x20, 0x02)
	v1 = append(v1, make([]byte, 31)...)
	v1 = append(v1, 0x22, 0x20, 0x03)
	v1 = append(v1, make([]byte, 31)...)
	v1 = append(v1, 0x28, 0x07, 0x30, 0x09, 0x38, 0x01)
	v1 = append(v1, 0x42, 0x0c)
	v1 = append(v1, "/aura/ping/1"...)
	v1 = append(v1, 0x4a, 0x04)
	v1 = append(v1, "ping"...)
	v1 = append(v1, 0x52, 0x07)
	v1 = append(v1, "receipt"...)
	v1 = append(v1, 0x5a, 0x07)
	v1 = append(v1, "payload"...)
	if got := sampleEnvelope().Encode(); !bytes.Equal(got, v1) {
		t.Fatalf("version 1 encoding changed:\n got %x\nwant %x", got, v1)
	}
	v2 := append([]byte{0x08, 0x02}, v1[2:]...)
	v2 = append(v2, 0x62, 0x0e)
	v2 = append(v2, "transport:ping"...)
	if got := sampleClaim().Encode(); !bytes.Equal(got, v2) {
		t.Fatalf("version 2 encoding:\n got %x\nwant %x", got, v2)
	}
	// Version 3 is version 2 with the token after the capability.
	v3 := append([]byte{0x08, 0x03}, v2[2:]...)
	v3 = append(v3, 0x6a, 0x0b)
	v3 = append(v3, "token bytes"...)
	if got := sampleToken().Encode(); !bytes.Equal(got, v3) {
		t.Fatalf("version 3 encoding:\n got %x\nwant %x", got, v3)
	}
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	good := sampleEnvelope().Encode()
	big := sampleEnvelope()
	big.Payload = make([]byte, MaxPayload+1)
	noType := sampleEnvelope()
	noType.Type = ""
	for name, b := range map[string][]byte{
		"empty":            nil,
		"truncated":        good[:len(good)-1],
		"trailing":         append(bytes.Clone(good), 0),
		"oversized":        big.Encode(),
		"empty type":       noType.Encode(),
		"wrong version":    append([]byte{0x08, 0x05}, good[2:]...),
		"v3 without token": append([]byte{0x08, 0x03}, sampleClaim().Encode()[2:]...),
		"v3 empty token":   append(append([]byte{0x08, 0x03}, sampleClaim().Encode()[2:]...), 0x6a, 0x00),
		"v2 with token":    append(sampleClaim().Encode(), 0x6a, 0x01, 'x'),
		"token too long": func() []byte {
			e := sampleToken()
			e.Token = make([]byte, MaxTokenLen+1)
			return e.Encode()
		}(),
		"token trailing":        append(sampleToken().Encode(), 0),
		"v2 without capability": append([]byte{0x08, 0x02}, good[2:]...),
		"v2 empty capability":   append(append([]byte{0x08, 0x02}, good[2:]...), 0x62, 0x00),
		"v1 with capability":    append(bytes.Clone(good), 0x62, 0x01, 'x'),
		"capability too long": func() []byte {
			e := sampleEnvelope()
			e.Capability = string(make([]byte, MaxCapabilityLen+1))
			return e.Encode()
		}(),
		"capability wrong type": append(append([]byte{0x08, 0x02}, good[2:]...), 0x60, 0x01),
		"capability overlong":   append(append([]byte{0x08, 0x02}, good[2:]...), 0x62, 0x81, 0x00, 'x'),
		"capability truncated":  append(append([]byte{0x08, 0x02}, good[2:]...), 0x62, 0x05, 'x'),
		"claim trailing":        append(sampleClaim().Encode(), 0),
		"no protocol":           func() []byte { e := sampleEnvelope(); e.Protocol = ""; return e.Encode() }(),
		"overlong tag":          append([]byte{0x88, 0x00}, good[1:]...),
	} {
		if _, err := DecodeEnvelope(b); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFramesRefuseOversize(t *testing.T) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, make([]byte, MaxFrame+1)); err == nil {
		t.Fatal("oversized frame written")
	}
	// A peer announcing a huge frame is refused before anything is allocated.
	buf.Reset()
	buf.Write([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	if _, err := readFrame(bufio.NewReader(&buf), nil); !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("got %v", err)
	}
	buf.Reset()
	writeFrame(&buf, []byte("abc"))
	got, err := readFrame(bufio.NewReader(&buf), nil)
	if err != nil || string(got) != "abc" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestMisbehaviourBacksOffAndGrows(t *testing.T) {
	clock := core.NewManualClock(time.Unix(0, 0))
	m := newMisbehaviour(clock, 3, time.Second)
	p := peer.ID("x")
	for range 2 {
		if m.record(p) {
			t.Fatal("cut off early")
		}
	}
	if !m.record(p) || !m.banned(p) || m.backoffOf(p) != time.Minute {
		t.Fatal("not cut off at the limit")
	}
	clock.Advance(61 * time.Second)
	if m.banned(p) {
		t.Fatal("still banned after the back-off")
	}
	for range 3 {
		m.record(p)
	}
	if m.backoffOf(p) != 2*time.Minute {
		t.Fatalf("back-off %s, want it doubled", m.backoffOf(p))
	}
	// Failures spread out beyond the window never add up.
	q := peer.ID("y")
	for range 10 {
		if m.record(q) {
			t.Fatal("slow failures cut the peer off")
		}
		clock.Advance(600 * time.Millisecond)
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(sampleEnvelope().Encode())
	f.Add(sampleClaim().Encode())
	f.Add(sampleToken().Encode())
	f.Add(sampleEnvelope().EncodeV4())
	f.Add(sampleToken().EncodeV4())
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	writeFrame(&buf, sampleEnvelope().Encode())
	f.Add(buf.Bytes())
	writeFrame(&buf, sampleClaim().Encode())
	f.Add(buf.Bytes())
	writeFrame(&buf, []byte("second"))
	f.Add(buf.Bytes())
	f.Add([]byte{0x02, 'a'})
	// readFrame tolerates a length written in more bytes than needed, so the
	// round trip is checked frame by frame against where each frame sits in
	// the input, and byte for byte on the re-encoded stream.
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		var frames [][]byte
		off := 0
		for {
			frame, err := readFrame(r, nil)
			if err != nil {
				break
			}
			if len(frame) > MaxFrame {
				t.Fatal("frame beyond the limit")
			}
			l, n := binary.Uvarint(b[off:])
			if n <= 0 || l != uint64(len(frame)) || off+n+len(frame) > len(b) || !bytes.Equal(frame, b[off+n:off+n+len(frame)]) {
				t.Fatalf("frame %d is not the %d bytes the input announced at offset %d", len(frames), l, off)
			}
			off += n + len(frame)
			frames = append(frames, frame)
			if e, err := DecodeEnvelope(frame); err == nil && !bytes.Equal(e.Encode(), frame) {
				t.Fatal("envelope re-encoding differs")
			}
		}
		var out bytes.Buffer
		for _, fr := range frames {
			if err := writeFrame(&out, fr); err != nil {
				t.Fatalf("re-encoding a read frame: %v", err)
			}
		}
		canonical := out.Bytes()
		r = bufio.NewReader(bytes.NewReader(canonical))
		var again bytes.Buffer
		for i := 0; ; i++ {
			fr, err := readFrame(r, nil)
			if errors.Is(err, io.EOF) {
				if i != len(frames) {
					t.Fatalf("re-read %d frames, want %d", i, len(frames))
				}
				break
			}
			if err != nil || i >= len(frames) || !bytes.Equal(fr, frames[i]) {
				t.Fatalf("re-reading frame %d: %v", i, err)
			}
			writeFrame(&again, fr)
		}
		if !bytes.Equal(again.Bytes(), canonical) {
			t.Fatal("frame stream re-encoding differs")
		}
	})
}
