package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"pgregory.net/rapid"

	"github.com/aura-p2p/aura/internal/core"
)

func sortedDevices(ss ...*KeySigner) []core.DeviceID {
	out := make([]core.DeviceID, len(ss))
	for i, s := range ss {
		out[i] = s.DeviceID()
	}
	slices.SortFunc(out, func(a, b core.DeviceID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func participantsPayload(t interface {
	Helper()
	Fatal(...any)
}, add ...*KeySigner) []byte {
	t.Helper()
	ms := make([]Member, len(add))
	for i, s := range add {
		ms[i] = Member{Device: s.DeviceID()}
	}
	b, err := EncodeParticipants(ms)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParticipantsChangeContextMembership(t *testing.T) {
	ctx := context.Background()
	a, b, c := seededSigner(1), seededSigner(2), seededSigner(3)
	j := open(t, filepath.Join(t.TempDir(), "journal.db"))
	defer j.Close()
	ctxNS := found(t, j, a, core.NamespaceContext, a)
	authNS := found(t, j, a, core.NamespaceAuthority, a)

	// Locally, a non-member is refused exactly as before.
	if _, _, err := j.AppendLocal(ctx, b, Draft{Namespace: ctxNS, TypeID: "chat", Payload: []byte("early")}); !errors.Is(err, core.ErrPermissionDenied) {
		t.Fatalf("non-member append: %v, want %v", err, core.ErrPermissionDenied)
	}
	// A non-member cannot add itself.
	if _, _, err := j.AppendLocal(ctx, b, Draft{Namespace: ctxNS, TypeID: TypeContextParticipants, Payload: participantsPayload(t, b)}); !errors.Is(err, core.ErrPermissionDenied) {
		t.Fatalf("self-add by a non-member: %v, want %v", err, core.ErrPermissionDenied)
	}

	refused := []struct {
		name string
		d    Draft
		want error
	}{
		{"participants in an authority namespace", Draft{Namespace: authNS, TypeID: TypeContextParticipants, Payload: participantsPayload(t, b)}, core.ErrInvalidArgument},
		{"empty payload", Draft{Namespace: ctxNS, TypeID: TypeContextParticipants}, core.ErrInvalidArgument},
		{"no devices", Draft{Namespace: ctxNS, TypeID: TypeContextParticipants, Payload: []byte{participantsVersion, 0, 0}}, core.ErrInvalidArgument},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := j.AppendLocal(ctx, a, tc.d); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if got, _ := j.Members(ctx, authNS); !slices.Equal(got, sortedDevices(a)) {
		t.Fatalf("authority members changed: %v", got)
	}

	if _, _, err := j.AppendLocal(ctx, a, Draft{Namespace: ctxNS, TypeID: TypeContextParticipants, Payload: participantsPayload(t, b)}); err != nil {
		t.Fatal(err)
	}
	// The new member may now write and add others.
	if _, _, err := j.AppendLocal(ctx, b, Draft{Namespace: ctxNS, TypeID: TypeContextParticipants, Payload: participantsPayload(t, c)}); err != nil {
		t.Fatalf("added member adds: %v", err)
	}
	if _, _, err := j.AppendLocal(ctx, c, Draft{Namespace: ctxNS, TypeID: "chat", Payload: []byte("hi")}); err != nil {
		t.Fatalf("added member writes: %v", err)
	}
	got, err := j.Members(ctx, ctxNS)
	if err != nil {
		t.Fatal(err)
	}
	if want := sortedDevices(a, b, c); !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	// Membership survives a reopen: it is stored, not rebuilt.
	path := j.db.Path()
	j.Close()
	j = open(t, path)
	defer j.Close()
	if got, _ := j.Members(ctx, ctxNS); !slices.Equal(got, sortedDevices(a, b, c)) {
		t.Fatalf("members after reopen %v", got)
	}
}

func TestMembershipSourcesAtOpen(t *testing.T) {
	tests := []struct {
		name    string
		sources []MembershipSource
		wantErr bool
	}{
		{"defaults", nil, false},
		{"explicit defaults", []MembershipSource{GenesisOnly(core.NamespaceAuthority), ContextParticipants()}, false},
		{"context fixed by genesis", []MembershipSource{GenesisOnly(core.NamespaceContext)}, false},
		{"two for one kind", []MembershipSource{ContextParticipants(), GenesisOnly(core.NamespaceContext)}, true},
		{"unknown kind", []MembershipSource{GenesisOnly(9)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "j.db"), Membership: tc.sources, NoSync: true})
			if tc.wantErr {
				if !errors.Is(err, core.ErrInvalidArgument) {
					t.Fatalf("got %v, want %v", err, core.ErrInvalidArgument)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			j.Close()
		})
	}
}

func TestParticipantsPayload(t *testing.T) {
	a, b := seededSigner(1).DeviceID(), seededSigner(2).DeviceID()
	good, err := EncodeParticipants([]Member{{Device: b}, {Device: a}})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := DecodeParticipants(good)
	if err != nil || len(ms) != 2 {
		t.Fatalf("round trip: %v %v", ms, err)
	}
	if again, _ := EncodeParticipants(ms); !bytes.Equal(again, good) {
		t.Fatal("re-encoding differs")
	}
	unsorted := slices.Clone(good)
	copy(unsorted[3:67], good[67:131])
	copy(unsorted[67:131], good[3:67])
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"short", []byte{1}, core.ErrInvalidArgument},
		{"version", append([]byte{2}, good[1:]...), core.ErrInvalidArgument},
		{"count mismatch", good[:len(good)-1], core.ErrInvalidArgument},
		{"none", []byte{1, 0, 0}, core.ErrInvalidArgument},
		{"unsorted", unsorted, ErrNonCanonical},
		{"duplicate", append(binary.BigEndian.AppendUint16([]byte{1}, 2), append(good[3:67], good[3:67]...)...), ErrNonCanonical},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeParticipants(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := EncodeParticipants([]Member{{Device: a}, {Device: a}}); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("duplicate encode: %v", err)
	}
}

// memberEntries reads members/<ns> as device → admitting fact key bytes.
func memberEntries(t *rapid.T, j *Journal, ns core.Namespace) map[core.DeviceID]string {
	out := map[core.DeviceID]string{}
	err := j.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMembers).Bucket(nsKey(ns))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[core.DeviceID(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A context's facts, received in any order, give the same members, the same
// admitting facts and the same stored facts: the closure of the genesis under
// the participant facts whose authors are members.
func TestMembershipReductionIsOrderFree(t *testing.T) {
	signers := make([]*KeySigner, 6)
	for i := range signers {
		signers[i] = seededSigner(byte(40 + i))
	}
	peer := seededSigner(99).DeviceID()
	dir := t.TempDir()
	run := 0
	rapid.Check(t, func(t *rapid.T) {
		founder := rapid.IntRange(0, len(signers)-1).Draw(t, "founder")
		g := Genesis{Kind: core.NamespaceContext, Threshold: 1, Members: []Member{{Device: signers[founder].DeviceID()}}}
		payload, err := g.Encode()
		if err != nil {
			t.Fatal(err)
		}
		ns := NamespaceOf(core.NamespaceContext, payload)
		sign := func(s *KeySigner, typ string, lamport uint64, p []byte) *SignedFact {
			sf, err := SignFact(s, Fact{Namespace: ns, TypeID: typ, Author: s.DeviceID(), Lamport: lamport, Payload: p})
			if err != nil {
				t.Fatal(err)
			}
			return sf
		}
		facts := []*SignedFact{sign(signers[founder], TypeGenesis, 1, payload)}
		// Equal draws sign equal bodies, hence one fact.
		seen := map[core.FactID]bool{facts[0].ID: true}
		push := func(sf *SignedFact) bool {
			if seen[sf.ID] {
				return false
			}
			seen[sf.ID] = true
			facts = append(facts, sf)
			return true
		}
		type add struct{ author, added int }
		var adds []add
		n := rapid.IntRange(0, 12).Draw(t, "n")
		for i := range n {
			author := rapid.IntRange(0, len(signers)-1).Draw(t, "author")
			lamport := uint64(rapid.IntRange(2, 6).Draw(t, "lamport"))
			if rapid.Bool().Draw(t, "isAdd") {
				added := rapid.IntRange(0, len(signers)-1).Draw(t, "added")
				if push(sign(signers[author], TypeContextParticipants, lamport, participantsPayload(t, signers[added]))) {
					adds = append(adds, add{author, added})
				}
			} else {
				push(sign(signers[author], "chat", lamport, []byte{byte(i)}))
			}
		}
		// The expected closure.
		member := map[int]bool{founder: true}
		for grew := true; grew; {
			grew = false
			for _, a := range adds {
				if member[a.author] && !member[a.added] {
					member[a.added], grew = true, true
				}
			}
		}
		var want []core.DeviceID
		wantIDs := map[core.FactID]bool{}
		for i, s := range signers {
			if member[i] {
				want = append(want, s.DeviceID())
			}
		}
		slices.SortFunc(want, func(a, b core.DeviceID) int { return bytes.Compare(a[:], b[:]) })
		for _, sf := range facts {
			if member[slices.IndexFunc(signers, func(s *KeySigner) bool { return s.DeviceID() == sf.Author })] {
				wantIDs[sf.ID] = true
			}
		}

		var firstEntries map[core.DeviceID]string
		for round := range 2 {
			order := rapid.Permutation(facts).Draw(t, "order")
			run++
			j, err := Open(context.Background(), Options{
				Path: filepath.Join(dir, fmt.Sprintf("j%d.db", run)), NoSync: true,
				Clock: core.NewManualClock(time.UnixMilli(1_700_000_000_000)),
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, sf := range order {
				if _, err := j.Receive(context.Background(), peer, sf); err != nil {
					j.Close()
					t.Fatalf("receive: %v", err)
				}
			}
			got, err := j.Members(context.Background(), ns)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: members %v, want %v", round, got, want)
			}
			stored := 0
			for id := range wantIDs {
				if _, err := j.Get(context.Background(), id); err != nil {
					t.Fatalf("round %d: admitted fact %s missing: %v", round, id, err)
				}
				stored++
			}
			st, _ := j.Stats(context.Background())
			if st.Facts != uint64(stored) {
				t.Fatalf("round %d: %d facts stored, want %d", round, st.Facts, stored)
			}
			if st.Orphans != uint64(len(facts)-stored) {
				t.Fatalf("round %d: %d orphans, want %d", round, st.Orphans, len(facts)-stored)
			}
			entries := memberEntries(t, j, ns)
			if round == 0 {
				firstEntries = entries
			} else if !mapsEqual(entries, firstEntries) {
				t.Fatalf("admitting facts differ between orders: %v vs %v", entries, firstEntries)
			}
			j.Close()
		}
	})
}

func mapsEqual(a, b map[core.DeviceID]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A store of schema 1 (no members/ bucket) is migrated: every namespace's
// members are its genesis members, admitted by its genesis.
func TestMigrateMembersV1ToV2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	a, b := seededSigner(1), seededSigner(2)
	j := open(t, path)
	auth := found(t, j, a, core.NamespaceAuthority, a, b)
	cns := found(t, j, b, core.NamespaceContext, b)
	if _, _, err := j.AppendLocal(ctx, a, Draft{Namespace: auth, TypeID: "chat", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	j.Close()

	// Turn it into the schema 1 layout.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []bucketName{bucketMembers, bucketSums} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, binary.BigEndian.AppendUint32(nil, 1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	j = open(t, path)
	defer j.Close()
	j.db.View(func(tx *bolt.Tx) error {
		if v, _ := schemaVersion(tx); v != SchemaVersion {
			t.Errorf("schema %d after migration", v)
		}
		return nil
	})
	tests := []struct {
		ns   core.Namespace
		want []core.DeviceID
	}{
		{auth, sortedDevices(a, b)},
		{cns, sortedDevices(b)},
	}
	for _, tc := range tests {
		got, err := j.Members(ctx, tc.ns)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Fatalf("members of %s: %v %v, want %v", tc.ns, got, err, tc.want)
		}
	}
	// Writes still check membership after the migration.
	if _, _, err := j.AppendLocal(ctx, a, Draft{Namespace: cns, TypeID: "chat", Payload: []byte("y")}); !errors.Is(err, core.ErrPermissionDenied) {
		t.Fatalf("non-member after migration: %v", err)
	}
	if _, _, err := j.AppendLocal(ctx, b, Draft{Namespace: auth, TypeID: "chat", Payload: []byte("y")}); err != nil {
		t.Fatalf("member after migration: %v", err)
	}
}
