package choreo

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
