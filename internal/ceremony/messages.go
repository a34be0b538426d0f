package ceremony

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"unicode/utf8"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Message payloads of the ContactInvitation protocol.

const (
	tagPrestate core.Tag = "aura/ceremony/contact/prestate/v1"
	tagCeremony core.Tag = "aura/ceremony/id/v1"
	tagProof             = "aura/ceremony/contact/proof/v1"
	msgVersion           = 1
)

// acceptance is what the invitee sends to accept or decline: who it is, the
// HPKE key the root secret is sealed to, and a proof that it holds the
// code's secret (which itself never travels).
type acceptance struct {
	Invitation [16]byte
	Authority  core.AuthorityID
	HPKE       [32]byte
	Nonce      [32]byte
	Proof      [32]byte
}

func (a *acceptance) encode() []byte {
	w := &writer{}
	w.byte(msgVersion)
	w.fixed(a.Invitation[:])
	w.fixed(a.Authority[:])
	w.fixed(a.HPKE[:])
	w.fixed(a.Nonce[:])
	w.fixed(a.Proof[:])
	return w.b
}

func decodeAcceptance(b []byte) (*acceptance, error) {
	r := &reader{b: b, what: "acceptance"}
	a := &acceptance{}
	if v := r.byte("version"); r.err == nil && v != msgVersion {
		r.fail("version %d", v)
	}
	r.fixed(a.Invitation[:], "invitation")
	r.fixed(a.Authority[:], "authority")
	r.fixed(a.HPKE[:], "hpke key")
	r.fixed(a.Nonce[:], "nonce")
	r.fixed(a.Proof[:], "proof")
	return a, r.done()
}

// proof binds the invitee's answer (label: Accept or Decline) to the secret,
// the invitation and everything the inviter will commit to.
func proof(secret [32]byte, label string, invitee core.DeviceID, a *acceptance) [32]byte {
	m := hmac.New(sha256.New, secret[:])
	m.Write([]byte(tagProof + "\x00" + label + "\x00"))
	m.Write(a.Invitation[:])
	m.Write(invitee[:])
	m.Write(a.Authority[:])
	m.Write(a.HPKE[:])
	m.Write(a.Nonce[:])
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// prestate names what a contact ceremony starts from: the two devices and
// accounts and the invitation. One invitation has one prestate, so the
// inviter's single resolution of it is the "one commit per prestate" rule.
func prestate(inviter core.DeviceID, inviterAuth core.AuthorityID, inv [16]byte, invitee core.DeviceID, inviteeAuth core.AuthorityID) core.Hash {
	return core.TaggedHash(tagPrestate, inviter[:], inviterAuth[:], inv[:], invitee[:], inviteeAuth[:])
}

// ceremonyID is H(prestate ‖ operation ‖ nonce) (DESIGN §10).
func ceremonyID(pre core.Hash, op string, nonce [32]byte) core.Hash {
	return core.TaggedHash(tagCeremony, pre[:], []byte(op), []byte{0}, nonce[:])
}

// commitMsg carries the inviter's committed facts to the invitee: the
// context's genesis and the commit, both signed by the inviter.
type commitMsg struct {
	Genesis *journal.SignedFact
	Commit  *journal.SignedFact
}

func (c *commitMsg) encode() []byte {
	w := &writer{}
	w.byte(msgVersion)
	w.bytes16(c.Genesis.Encode())
	w.bytes16(c.Commit.Encode())
	return w.b
}

func decodeCommitMsg(b []byte) (*commitMsg, error) {
	r := &reader{b: b, what: "commit message"}
	if v := r.byte("version"); r.err == nil && v != msgVersion {
		r.fail("version %d", v)
	}
	g := r.bytes16("genesis", journal.MaxSignedFactSize)
	c := r.bytes16("commit", journal.MaxSignedFactSize)
	if err := r.done(); err != nil {
		return nil, err
	}
	gf, err := journal.DecodeSignedFact(g)
	if err != nil {
		return nil, err
	}
	cf, err := journal.DecodeSignedFact(c)
	if err != nil {
		return nil, err
	}
	return &commitMsg{Genesis: gf, Commit: cf}, nil
}

// abortMsg is the inviter's refusal: a reason code and a sentence.
type abortMsg struct {
	Reason, Detail string
}

func (a *abortMsg) encode() []byte {
	w := &writer{}
	w.byte(msgVersion)
	w.string16(clipText(a.Reason, maxReasonLen))
	w.string16(clipText(a.Detail, maxReasonLen))
	return w.b
}

func decodeAbortMsg(b []byte) (*abortMsg, error) {
	r := &reader{b: b, what: "abort message"}
	if v := r.byte("version"); r.err == nil && v != msgVersion {
		r.fail("version %d", v)
	}
	a := &abortMsg{Reason: string(r.bytes16("reason", maxReasonLen)), Detail: string(r.bytes16("detail", maxReasonLen))}
	if err := r.done(); err != nil {
		return nil, err
	}
	if !utf8.ValidString(a.Reason) || !utf8.ValidString(a.Detail) {
		return nil, fmt.Errorf("abort message: reason is not UTF-8: %w", core.ErrInvalidArgument)
	}
	return a, nil
}
