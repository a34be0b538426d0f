package ceremony

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// contactOp is one generated contact fact, before signing.
type contactOp struct {
	typeID  string
	ctx     int // index into the test's contexts
	author  int // which of the account's two devices
	lamport uint64
	nick    string
	blocked bool
	peer    byte // the contact's authority/device/ceremony, for records
}

var testContexts = []core.ContextID{{0xc1}, {0xc2}, {0xc3}}

func genContactOp(t *rapid.T, label string) contactOp {
	op := contactOp{
		typeID:  rapid.SampledFrom([]string{TypeContact, TypeContactName, TypeContactBlock}).Draw(t, label+".type"),
		ctx:     rapid.IntRange(0, len(testContexts)-1).Draw(t, label+".ctx"),
		author:  rapid.IntRange(0, 1).Draw(t, label+".author"),
		lamport: rapid.Uint64Range(1, 12).Draw(t, label+".lamport"),
		peer:    rapid.ByteRange(1, 4).Draw(t, label+".peer"),
	}
	switch op.typeID {
	case TypeContact:
		op.nick = rapid.SampledFrom([]string{"", "", "ann", "bea"}).Draw(t, label+".nick")
	case TypeContactName:
		op.nick = rapid.SampledFrom([]string{"cat", "dan", "eve"}).Draw(t, label+".nick")
	case TypeContactBlock:
		op.blocked = rapid.Bool().Draw(t, label+".blocked")
	}
	return op
}

func (op contactOp) payload() []byte {
	c := testContexts[op.ctx]
	switch op.typeID {
	case TypeContact:
		return (&ContactRecord{Context: c, Ceremony: core.Hash{op.peer}, Authority: core.AuthorityID{op.peer}, Device: core.DeviceID{op.peer}, Nickname: op.nick}).Encode()
	case TypeContactName:
		return (&ContactChange{Context: c, Nickname: op.nick}).encode(TypeContactName)
	}
	return (&ContactChange{Context: c, Blocked: op.blocked}).encode(TypeContactBlock)
}

// contactFixture is an account of two devices and its authority namespace.
type contactFixture struct {
	keys    [2]ed25519.PrivateKey
	genesis *journal.SignedFact
	ns      core.Namespace
}

func newContactFixture(t testing.TB) *contactFixture {
	fx := &contactFixture{keys: [2]ed25519.PrivateKey{seededKey(10), seededKey(20)}}
	g := journal.Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Members: []journal.Member{{Device: deviceOf(fx.keys[0])}, {Device: deviceOf(fx.keys[1])}}}
	p, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	fx.ns = journal.NamespaceOf(core.NamespaceAuthority, p)
	fx.genesis = sampleFact(t, fx.keys[0], fx.ns, journal.TypeGenesis, 1, p)
	return fx
}

func (fx *contactFixture) sign(t tb, op contactOp) *journal.SignedFact {
	return sampleFact(t, fx.keys[op.author], fx.ns, op.typeID, op.lamport, op.payload())
}

// foldContacts is what the journal does: the set of facts (duplicates are one
// fact) folded per key in (lamport, id) order.
func foldContacts(t tb, facts []*journal.SignedFact) map[core.ContextID][]byte {
	t.Helper()
	sorted := slices.Clone(facts)
	slices.SortFunc(sorted, func(a, b *journal.SignedFact) int {
		if a.Lamport != b.Lamport {
			if a.Lamport < b.Lamport {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	sorted = slices.CompactFunc(sorted, func(a, b *journal.SignedFact) bool { return a.ID == b.ID })
	r := Reducer()
	out := map[core.ContextID][]byte{}
	for _, f := range sorted {
		if !r.Handles(f.TypeID) {
			t.Fatalf("reducer does not handle %s", f.TypeID)
		}
		key, err := r.Key(f)
		if err != nil {
			t.Fatal(err)
		}
		var c core.ContextID
		copy(c[:], key)
		next, err := r.Apply(out[c], f)
		if err != nil {
			t.Fatal(err)
		}
		out[c] = next
	}
	return out
}

// oracle states the rules directly: the record's fields come from the
// latest record; the name is the latest rename if there is one, else the
// first nickname a record brought; blocked is the latest block fact.
func oracle(t tb, facts []*journal.SignedFact) map[core.ContextID]contactState {
	t.Helper()
	sorted := slices.Clone(facts)
	slices.SortFunc(sorted, func(a, b *journal.SignedFact) int {
		switch {
		case a.Key().Less(b.Key()):
			return -1
		case b.Key().Less(a.Key()):
			return 1
		}
		return 0
	})
	type acc struct {
		st            contactState
		named, recNck bool
	}
	m := map[core.ContextID]*acc{}
	for _, f := range sorted {
		var c core.ContextID
		switch f.TypeID {
		case TypeContact:
			rec, err := DecodeContactRecord(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			c = rec.Context
			if m[c] == nil {
				m[c] = &acc{}
			}
			a := m[c]
			nick := a.st.Nickname
			a.st.ContactRecord = *rec
			a.st.Nickname = nick
			if !a.named && !a.recNck && rec.Nickname != "" {
				a.st.Nickname, a.recNck = rec.Nickname, true
			}
		default:
			ch, err := decodeContactChange(f.TypeID, f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			c = ch.Context
			if m[c] == nil {
				m[c] = &acc{st: contactState{ContactRecord: ContactRecord{Context: c}}}
			}
			if f.TypeID == TypeContactName {
				m[c].st.Nickname, m[c].named = ch.Nickname, true
			} else {
				m[c].st.Blocked = ch.Blocked
			}
		}
	}
	out := map[core.ContextID]contactState{}
	for c, a := range m {
		out[c] = a.st
	}
	return out
}

func TestContactReducerOrderIndependent(t *testing.T) {
	fx := newContactFixture(t)
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 24).Draw(t, "n")
		var facts []*journal.SignedFact
		for i := range n {
			facts = append(facts, fx.sign(t, genContactOp(t, "op"+string(rune('a'+i)))))
		}
		perm := rapid.Permutation(facts).Draw(t, "order")
		got, other := foldContacts(t, facts), foldContacts(t, perm)
		want := oracle(t, facts)
		if len(got) != len(want) || len(other) != len(want) {
			t.Fatalf("%d and %d contacts folded, oracle has %d", len(got), len(other), len(want))
		}
		for c, w := range want {
			if !bytes.Equal(got[c], other[c]) {
				t.Fatalf("context %x: state depends on generation order", c[:1])
			}
			st, err := decodeContactState(got[c])
			if err != nil {
				t.Fatal(err)
			}
			if *st != w {
				t.Fatalf("context %x: folded %+v, oracle %+v", c[:1], *st, w)
			}
		}
	})
}

// The journal's own fold, with facts arriving in any order (some below a
// key's high-water mark, so the key is refolded), matches the in-order fold.
func TestContactReducerInJournal(t *testing.T) {
	fx := newContactFixture(t)
	dir := t.TempDir()
	runs := 0
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 12).Draw(t, "n")
		var facts []*journal.SignedFact
		for i := range n {
			facts = append(facts, fx.sign(t, genContactOp(t, "op"+string(rune('a'+i)))))
		}
		arrival := rapid.Permutation(facts).Draw(t, "arrival")
		runs++
		ctx := context.Background()
		j, err := journal.Open(ctx, journal.Options{Path: filepath.Join(dir, fmt.Sprintf("j%d.db", runs)),
			Reducers: []journal.Reducer{Reducer()}, Validators: Validators(), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if _, err := j.Append(ctx, fx.genesis); err != nil {
			t.Fatal(err)
		}
		for _, f := range arrival {
			if _, err := j.Append(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		want := foldContacts(t, facts)
		got := map[core.ContextID][]byte{}
		if err := j.ScanState(ctx, reducerName, fx.ns, nil, 0, func(k, v []byte) bool {
			var c core.ContextID
			copy(c[:], k)
			got[c] = bytes.Clone(v)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("journal holds %d contacts, fold %d", len(got), len(want))
		}
		for c, w := range want {
			if !bytes.Equal(got[c], w) {
				t.Fatalf("context %x: journal state %x, in-order fold %x", c[:1], got[c], w)
			}
		}
	})
}

func TestContactReducerRefuses(t *testing.T) {
	fx := newContactFixture(t)
	r := Reducer()
	ctxNS := core.ContextNamespace(core.ContextID{1})
	for _, tc := range []struct {
		name string
		f    *journal.SignedFact
	}{
		{"record in a context namespace", sampleFact(t, fx.keys[0], ctxNS, TypeContact, 1, (&ContactRecord{Context: core.ContextID{1}}).Encode())},
		{"malformed record", sampleFact(t, fx.keys[0], fx.ns, TypeContact, 1, []byte{1, 2})},
		{"empty rename", sampleFact(t, fx.keys[0], fx.ns, TypeContactName, 1, (&ContactChange{Context: core.ContextID{1}}).encode(TypeContactName))},
		{"block of 2", sampleFact(t, fx.keys[0], fx.ns, TypeContactBlock, 1, append((&ContactChange{Context: core.ContextID{1}}).encode(TypeContactBlock)[:33], 2))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.Key(tc.f); !errors.Is(err, core.ErrInvalidArgument) {
				t.Fatalf("Key = %v, want ErrInvalidArgument", err)
			}
		})
	}
}
