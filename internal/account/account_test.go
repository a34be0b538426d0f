package account

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/session"
	"github.com/aura-p2p/aura/internal/tree"
)

func seededKey(seed byte) ed25519.PrivateKey {
	var s [ed25519.SeedSize]byte
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s[:])
}

func hpkeOf(t testing.TB, seed byte) (pub, priv [32]byte) {
	t.Helper()
	for i := range priv {
		priv[i] = seed ^ byte(i*7)
	}
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		t.Fatal(err)
	}
	copy(pub[:], k.PublicKey().Bytes())
	return pub, priv
}

func deviceOf(k ed25519.PrivateKey) core.DeviceID {
	var d core.DeviceID
	copy(d[:], k.Public().(ed25519.PublicKey))
	return d
}

// registrar is the part of the session runtime New uses; enrollment over a
// real runtime and transport runs in test/e2e.
type registrar struct{ roles []string }

func (r *registrar) Register(_, role string, _ session.Handler) error {
	r.roles = append(r.roles, role)
	return nil
}
func (r *registrar) Start(context.Context, string, map[string]core.DeviceID, session.StartOptions) (session.Session, error) {
	return session.Session{}, errors.New("no runtime in this test")
}
func (r *registrar) Wait(context.Context, session.SessionID) (session.Session, error) {
	return session.Session{}, errors.New("no runtime in this test")
}

type addrs struct{}

func (addrs) Addrs() []string                       { return []string{"/ip4/127.0.0.1/tcp/4001"} }
func (addrs) AddPeer(context.Context, string) error { return nil }

// device is one device's journal and account service.
type device struct {
	key     ed25519.PrivateKey
	hpke    [32]byte
	hpkeSK  [32]byte
	j       *journal.Journal
	s       *Service
	adopted core.AuthorityID
	joined  []core.AuthorityID
}

func openDevice(t *testing.T, seed byte, clock core.Clock) *device {
	t.Helper()
	ctx := context.Background()
	d := &device{key: seededKey(seed)}
	d.hpke, d.hpkeSK = hpkeOf(t, seed)
	j, err := journal.Open(ctx, journal.Options{
		Path: filepath.Join(t.TempDir(), "journal.db"), Clock: clock, NoSync: true,
		Validators: Validators(), Membership: []journal.MembershipSource{Membership()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	d.j = j
	signer := journal.NewKeySigner(d.key)
	g := journal.Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Members: []journal.Member{{Device: deviceOf(d.key), HPKEKey: d.hpke}}}
	g.Nonce[0] = seed
	payload, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ns := journal.NamespaceOf(core.NamespaceAuthority, payload)
	if _, _, err := j.AppendLocal(ctx, signer, journal.Draft{Namespace: ns, TypeID: journal.TypeGenesis, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	d.s, err = New(Options{
		Journal: j, Sessions: &registrar{}, Network: addrs{}, Signer: signer, DeviceKey: d.key, HPKEPub: d.hpke[:], HPKEPriv: d.hpkeSK[:],
		Authority: core.AuthorityID(ns.ID),
		Adopt: func(a core.AuthorityID) journal.TxOp {
			return func(*journal.ExtTx) error { d.adopted = a; return nil }
		},
		Joined: func(a core.AuthorityID) { d.joined = append(d.joined, a) },
		Clock:  clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// joinOf is what a new device sends for code, as newDevice would.
func joinOf(t *testing.T, code string, newDevice *device) *joinRequest {
	t.Helper()
	iv, err := ceremony.ParseCodeAs(ceremony.DeviceCode(), code)
	if err != nil {
		t.Fatal(err)
	}
	req := &joinRequest{Invitation: iv.ID, HPKE: newDevice.hpke}
	req.Nonce[0] = 9
	req.Proof = joinProof(iv.Secret, deviceOf(newDevice.key), req)
	return req
}

func TestEnrollmentDecideAndTake(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a, b := openDevice(t, 1, clock), openDevice(t, 2, clock)
	inv, err := a.s.Invite(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Expires.Equal(clock.Now().Add(DefaultExpiry)) {
		t.Errorf("expires %s", inv.Expires)
	}
	req := joinOf(t, inv.Code, b)

	// A wrong proof, an unknown invitation: refused, nothing stored.
	bad := *req
	bad.Proof[0] ^= 1
	if _, _, err := a.s.decide(ctx, &decision{device: deviceOf(b.key), req: &bad}); !errors.Is(err, ErrBadProof) {
		t.Fatalf("bad proof: %v", err)
	}
	unknown := *req
	unknown.Invitation[0] ^= 1
	if _, _, err := a.s.decide(ctx, &decision{device: deviceOf(b.key), req: &unknown}); !errors.Is(err, ErrUnknownInvitation) {
		t.Fatalf("unknown invitation: %v", err)
	}
	if v, err := a.s.Show(ctx); err != nil || len(v.Devices) != 1 || len(v.Ops) != 0 {
		t.Fatalf("after refusals: %+v, %v", v, err)
	}

	e, _, err := a.s.decide(ctx, &decision{device: deviceOf(b.key), req: req})
	if err != nil {
		t.Fatal(err)
	}
	va, err := a.s.Show(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(va.Devices) != 2 || va.Epoch != 1 || len(va.Ops) != 1 || va.Ops[0].Status != tree.StatusApplied || va.Ops[0].Kind != tree.KindAddLeaf {
		t.Fatalf("after the commit: %+v", va)
	}
	// The invitation is spent, also for the same device.
	if _, _, err := a.s.decide(ctx, &decision{device: deviceOf(b.key), req: req}); !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("same device again: %v", err)
	}
	c := openDevice(t, 3, clock)
	if _, _, err := a.s.decide(ctx, &decision{device: deviceOf(c.key), req: joinOf(t, inv.Code, c)}); !errors.Is(err, ErrInvitationUsed) {
		t.Fatalf("used invitation: %v", err)
	}

	// The new device takes the commit: the account's genesis and op, and
	// the adoption of the account, in one transaction.
	iv, err := ceremony.ParseCodeAs(ceremony.DeviceCode(), inv.Code)
	if err != nil {
		t.Fatal(err)
	}
	j := &joinState{iv: iv, req: *req}
	if err := b.s.takeEnrollment(ctx, j, e.encode()); err != nil {
		t.Fatal(err)
	}
	if b.adopted != va.Authority {
		t.Fatalf("adopted %s, want %s", b.adopted, va.Authority)
	}
	vb, err := b.s.viewOf(ctx, va.Authority)
	if err != nil {
		t.Fatal(err)
	}
	if vb.Root != va.Root || vb.Epoch != va.Epoch || len(vb.Devices) != 2 {
		t.Fatalf("the new device reduces another tree: %+v vs %+v", vb, va)
	}
	// The new device is a member: its own facts enter the account's
	// namespace on its journal.
	ns := core.AuthorityNamespace(va.Authority)
	if ms, err := b.j.Members(ctx, ns); err != nil || len(ms) != 2 {
		t.Fatalf("members on the new device: %v, %v", ms, err)
	}

	// A commit for another device's key is refused.
	j2 := &joinState{iv: iv, req: *req}
	j2.req.HPKE, _ = hpkeOf(t, 7)
	if err := c.s.takeEnrollment(ctx, j2, e.encode()); !errors.Is(err, core.ErrPermissionDenied) {
		t.Fatalf("commit for another device: %v", err)
	}
}

func TestEnrollmentExpiredInvitation(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a, b := openDevice(t, 1, clock), openDevice(t, 2, clock)
	inv, err := a.s.Invite(ctx, MinExpiry)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(MinExpiry)
	if _, _, err := a.s.decide(ctx, &decision{device: deviceOf(b.key), req: joinOf(t, inv.Code, b)}); !errors.Is(err, core.ErrFailedPrecondition) || !isFinal(err) {
		t.Fatalf("expired: %v", err)
	}
	for _, d := range []time.Duration{time.Second, MaxExpiry + time.Second} {
		if _, err := a.s.Invite(ctx, d); !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("expiry %s: %v", d, err)
		}
	}
}

func TestJoinRefusals(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a := openDevice(t, 1, clock)
	inv, err := a.s.Invite(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	contact := &ceremony.Invitation{Inviter: deviceOf(a.key), Expires: clock.Now().Add(time.Hour)}
	if err := contact.Sign(a.key); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, code string
		want       error
	}{
		{"own code", inv.Code, ErrOwnInvitation},
		{"contact code", contact.Code(), ceremony.ErrCodeMalformed},
		{"garbage", "aura-device1-!!", ceremony.ErrCodeMalformed},
	} {
		if _, err := a.s.Join(ctx, tt.code); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	b := openDevice(t, 2, clock)
	clock.Advance(2 * time.Hour)
	if _, err := b.s.Join(ctx, inv.Code); !errors.Is(err, ceremony.ErrCodeExpired) {
		t.Errorf("expired: %v", err)
	}
}

func TestValidateOp(t *testing.T) {
	key, other := seededKey(1), seededKey(2)
	pub1, _ := hpkeOf(t, 1)
	pub2, _ := hpkeOf(t, 2)
	st, err := tree.Genesis([]tree.Leaf{{Role: tree.RoleDevice, Device: deviceOf(key), HPKE: pub1}}, tree.Any())
	if err != nil {
		t.Fatal(err)
	}
	op := &tree.Op{Parent: st.Name(), Body: tree.AddLeafBody{Leaf: tree.Leaf{Role: tree.RoleDevice, Device: deviceOf(other), HPKE: pub2}}}
	sign := func(k ed25519.PrivateKey) []byte {
		o := *op
		if o.Attestation, err = tree.SignSingle(k, &o); err != nil {
			t.Fatal(err)
		}
		b, err := tree.AppendOp(nil, &o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	authNS := core.Namespace{Kind: core.NamespaceAuthority, ID: [32]byte{1}}
	ctxNS := core.Namespace{Kind: core.NamespaceContext, ID: [32]byte{1}}
	for _, tt := range []struct {
		name    string
		ns      core.Namespace
		author  core.DeviceID
		payload []byte
		ok      bool
	}{
		{"attested by its author", authNS, deviceOf(key), sign(key), true},
		{"attested by another device", authNS, deviceOf(other), sign(key), false},
		{"in a context namespace", ctxNS, deviceOf(key), sign(key), false},
		{"not an op", authNS, deviceOf(key), []byte{1, 2, 3}, false},
	} {
		f := &journal.SignedFact{}
		f.Namespace, f.Author, f.Payload, f.TypeID = tt.ns, tt.author, tt.payload, TypeTreeOp
		if err := validateOp(f); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}

	adds, err := Membership().Adds(&journal.SignedFact{Fact: journal.Fact{Payload: sign(key)}})
	if err != nil || len(adds) != 1 || adds[0] != deviceOf(other) {
		t.Errorf("membership of an AddLeaf: %v, %v", adds, err)
	}
	rot := &tree.Op{Parent: st.Name(), Body: tree.RotateEpochBody{}, Attestation: make([]byte, 64)}
	b, err := tree.AppendOp(nil, rot)
	if err != nil {
		t.Fatal(err)
	}
	if adds, err := Membership().Adds(&journal.SignedFact{Fact: journal.Fact{Payload: b}}); err != nil || len(adds) != 0 {
		t.Errorf("membership of a rotation: %v, %v", adds, err)
	}
}

func TestMessageRoundTrips(t *testing.T) {
	req := &joinRequest{}
	req.Invitation[0], req.HPKE[1], req.Nonce[2], req.Proof[3] = 1, 2, 3, 4
	got, err := decodeJoinRequest(req.encode())
	if err != nil || *got != *req {
		t.Fatalf("join request: %+v, %v", got, err)
	}
	if _, err := decodeJoinRequest(append([]byte{2}, make([]byte, 112)...)); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("join request of version 2: %v", err)
	}
	a, err := decodeAbortMsg((&abortMsg{Detail: "no"}).encode())
	if err != nil || a.Detail != "no" {
		t.Fatalf("abort: %+v, %v", a, err)
	}
	// A long detail is clipped on a character boundary, and what is not
	// UTF-8 is refused.
	long := "x" + strings.Repeat("é", maxDetail)
	if a, err := decodeAbortMsg((&abortMsg{Detail: long}).encode()); err != nil || !utf8.ValidString(a.Detail) || len(a.Detail) != maxDetail-1 {
		t.Fatalf("long abort: %+v, %v", a, err)
	}
	if _, err := decodeAbortMsg([]byte{msgVersion, 0xff, 'x'}); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("non-UTF-8 abort: %v", err)
	}
	rec := &inviteRecord{Expires: time.Unix(1_800_000_000, 0).UTC(), State: inviteUsed}
	rec.Secret[5], rec.Device[6] = 5, 6
	r2, err := decodeInviteRecord(rec.encode())
	if err != nil || *r2 != *rec {
		t.Fatalf("invite record: %+v, %v", r2, err)
	}
	if _, err := decodeInviteRecord(rec.encode()[1:]); !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("short record: %v", err)
	}
}

// FuzzEnrollmentMessages feeds the decoders of what a peer sends in the
// ceremony: whatever they accept re-encodes to the same bytes.
func FuzzEnrollmentMessages(f *testing.F) {
	f.Add([]byte{msgVersion})
	f.Add((&joinRequest{}).encode())
	f.Add((&abortMsg{Detail: "refused"}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeJoinRequest(b); err == nil && !bytes.Equal(r.encode(), b) {
			t.Fatalf("join request re-encodes differently")
		}
		if a, err := decodeAbortMsg(b); err == nil && !bytes.Equal(a.encode(), b) {
			t.Fatalf("abort re-encodes differently")
		}
		if e, err := decodeEnrollment(b); err == nil && !bytes.Equal(e.encode(), b) {
			t.Fatalf("enrollment re-encodes differently")
		}
		if p, err := decodeHistoryPart(b); err == nil && !bytes.Equal(p.encode(), b) {
			t.Fatalf("history part re-encodes differently")
		}
	})
}

func TestSplitHistory(t *testing.T) {
	fact := func(size int) *journal.SignedFact {
		return &journal.SignedFact{Body: make([]byte, size)} // only its size matters here
	}
	small := func(n, size int) []*journal.SignedFact {
		out := make([]*journal.SignedFact, n)
		for i := range out {
			out[i] = fact(size)
		}
		return out
	}
	e := &enrollment{Genesis: fact(300), Op: fact(300), Chain: small(400, 500)}
	parts, tail, err := splitHistory(e)
	if err != nil {
		t.Fatal(err)
	}
	var all []*journal.SignedFact
	for _, p := range parts {
		if n := len(p.encode()); n > maxEnrollmentBytes {
			t.Fatalf("a part of %d bytes", n)
		}
		all = append(all, p.Facts...)
	}
	all = append(all, tail...)
	if len(parts) < 2 || len(all) != len(e.Chain) || len(e.Chain) != 400 {
		t.Fatalf("%d parts, %d facts of %d, the enrollment's chain changed to %d", len(parts), len(all), 400, len(e.Chain))
	}
	for i := range all {
		if all[i] != e.Chain[i] {
			t.Fatalf("fact %d out of order", i)
		}
	}
	last := *e
	last.Chain = tail
	if n := len(last.encode()); n > maxEnrollmentBytes {
		t.Fatalf("a commit of %d bytes", n)
	}
	for _, c := range []struct {
		name string
		e    *enrollment
	}{
		{"a fact larger than a message", &enrollment{Genesis: fact(300), Op: fact(300), Chain: []*journal.SignedFact{fact(100), fact(maxEnrollmentBytes)}}},
		{"a genesis larger than a message", &enrollment{Genesis: fact(maxEnrollmentBytes), Op: fact(300), Chain: small(3, 100)}},
	} {
		if _, _, err := splitHistory(c.e); !errors.Is(err, core.ErrFailedPrecondition) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
