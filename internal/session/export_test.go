package session

import "fmt"

// EncodeTestMsg builds a raw session message, for tests that play a peer
// breaking the protocol. With roles set it carries a header for protocol.
func EncodeTestMsg(id SessionID, label, from, to string, s *Session) []byte {
	f := frame{Session: id, Label: label, From: from, To: to, Step: 1}
	if s != nil {
		f.Header = &header{Protocol: s.Protocol, Hash: s.Hash, Context: s.Context, Roles: s.Roles, Choices: s.Choices}
	}
	return f.encode()
}

// DecodeTestFrame exposes the frame decoder to the fuzz target.
func DecodeTestFrame(b []byte) (SessionID, error) {
	f, err := decodeFrame(b)
	if err != nil {
		return SessionID{}, err
	}
	if f.Header != nil {
		// Round trip: what decodes re-encodes to something that decodes
		// the same way.
		g, err := decodeFrame(f.encode())
		if err != nil || !g.Header.equal(f.Header) || g.Label != f.Label {
			panic("frame does not round-trip")
		}
	}
	return f.Session, nil
}

// ReencodeTestFrame decodes a frame and encodes it again, with a description
// of every decoded field, so a fuzz target can check that the round trip
// keeps what the decoder read.
func ReencodeTestFrame(b []byte) (enc []byte, desc string, err error) {
	f, err := decodeFrame(b)
	if err != nil {
		return nil, "", err
	}
	g := *f
	g.Header = nil
	desc = fmt.Sprintf("%+v", g)
	if f.Header != nil {
		desc += fmt.Sprintf(" header %+v", *f.Header)
	}
	return f.encode(), desc, nil
}
