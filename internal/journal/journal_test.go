package journal

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// seededSigner returns a deterministic signer so test failures reproduce.
func seededSigner(seed byte) *KeySigner {
	return NewKeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)))
}

type fixture struct {
	j      *Journal
	signer *KeySigner
	ns     core.Namespace
	path   string
}

func open(t *testing.T, path string, reducers ...Reducer) *Journal {
	t.Helper()
	j, err := Open(context.Background(), Options{
		Path: path, Reducers: reducers,
		Clock: core.NewManualClock(time.UnixMilli(1_700_000_000_000)),
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return j
}

// newFixture opens a journal holding one authority namespace founded by signer.
func newFixture(t *testing.T, reducers ...Reducer) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.db")
	j := open(t, path, reducers...)
	t.Cleanup(func() { j.Close() })
	s := seededSigner(1)
	ns := found(t, j, s, core.NamespaceAuthority, s)
	return &fixture{j: j, signer: s, ns: ns, path: path}
}

func found(t *testing.T, j *Journal, author *KeySigner, kind core.NamespaceKind, members ...*KeySigner) core.Namespace {
	t.Helper()
	g := Genesis{Kind: kind, Threshold: 1}
	for _, m := range members {
		g.Members = append(g.Members, Member{Device: m.DeviceID()})
	}
	payload, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ns := NamespaceOf(kind, payload)
	if _, _, err := j.AppendLocal(context.Background(), author, Draft{Namespace: ns, TypeID: TypeGenesis, Payload: payload}); err != nil {
		t.Fatalf("genesis: %v", err)
	}
	return ns
}

func (f *fixture) append(t *testing.T, typ, payload string) Committed {
	t.Helper()
	_, c, err := f.j.AppendLocal(context.Background(), f.signer, Draft{Namespace: f.ns, TypeID: typ, Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return c
}

func TestBodyRoundTripIsCanonical(t *testing.T) {
	s := seededSigner(7)
	f := Fact{
		Namespace: core.ContextNamespace(core.ContextID{1, 2}), TypeID: "app.note/v1", SchemaVersion: 3,
		Payload: []byte("hello"), Author: s.DeviceID(), Lamport: 42, CreatedAtMs: 1234,
	}
	sf, err := SignFact(s, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := sf.VerifySignature(); err != nil {
		t.Fatal(err)
	}
	wire := sf.Encode()
	back, err := DecodeSignedFact(wire)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != sf.ID || !bytes.Equal(back.Encode(), wire) || back.Lamport != 42 || back.TypeID != f.TypeID {
		t.Fatalf("round trip changed the fact: %+v", back)
	}
}

func TestDecodeRejects(t *testing.T) {
	s := seededSigner(7)
	good, err := EncodeBody(&Fact{Namespace: core.ContextNamespace(core.ContextID{1}), TypeID: "t", Author: s.DeviceID(), Lamport: 1})
	if err != nil {
		t.Fatal(err)
	}
	zeroField := append(bytes.Clone(good), 0x30, 0x00)      // field 6 varint 0
	dupField := append(bytes.Clone(good), 0x12, 0x01, 'x')  // type_id again after author
	overlong := append(bytes.Clone(good), 0x38, 0x81, 0x00) // field 7 = 1 in two bytes
	tests := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-3]},
		{"zero value present", zeroField},
		{"field out of order", dupField},
		{"overlong varint", overlong},
		{"unknown field", append(bytes.Clone(good), 0x48, 0x01)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeBody(tc.body); err == nil {
				t.Fatal("decoded")
			}
		})
	}
	big := &Fact{Namespace: core.ContextNamespace(core.ContextID{1}), TypeID: "t", Payload: make([]byte, MaxPayloadSize+1)}
	if _, err := EncodeBody(big); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("oversized payload: %v", err)
	}
	for _, bad := range []string{"", "Upper", "sp ace", "ünï"} {
		if err := CheckTypeID(bad); !errors.Is(err, core.ErrInvalidArgument) {
			t.Fatalf("type id %q accepted", bad)
		}
	}
}

func TestAppendGetListAcrossReopen(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var ids []core.FactID
	for i := range 5 {
		ids = append(ids, f.append(t, "app.note/v1", fmt.Sprint(i)).ID)
	}
	f.j.Close()
	f.j = open(t, f.path)
	defer f.j.Close()
	got, err := f.j.Get(ctx, ids[3])
	if err != nil || string(got.Payload) != "3" {
		t.Fatalf("get: %v %q", err, got.Payload)
	}
	st, _ := f.j.Stats(ctx)
	if st.Facts != 6 || st.Namespaces != 1 || st.LastSeq != 6 {
		t.Fatalf("stats %+v", st)
	}
	// Lamports continue above what was stored.
	c := f.append(t, "app.note/v1", "after")
	if c.Lamport != 7 {
		t.Fatalf("lamport after reopen %d, want 7", c.Lamport)
	}
	for _, q := range []ListQuery{{}, {Namespace: &f.ns}} {
		q.TypeID, q.PageSize = "app.note/v1", 2
		var all []string
		for {
			page, next, err := f.j.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, sf := range page {
				all = append(all, string(sf.Payload))
			}
			if next == "" {
				break
			}
			q.PageToken = next
		}
		if fmt.Sprint(all) != "[0 1 2 3 4 after]" {
			t.Fatalf("list %+v: %v", q.Namespace, all)
		}
	}
}

func TestBadPageTokens(t *testing.T) {
	f := newFixture(t)
	for i := range 3 {
		f.append(t, "app.note/v1", fmt.Sprint(i))
	}
	ctx := context.Background()
	_, next, err := f.j.List(ctx, ListQuery{PageSize: 1})
	if err != nil || next == "" {
		t.Fatal(err, next)
	}
	for name, q := range map[string]ListQuery{
		"garbage":     {PageToken: "%%%"},
		"truncated":   {PageToken: next[:4]},
		"other query": {PageToken: next, TypeID: "other/v1"},
		"other mode":  {PageToken: next, Namespace: &f.ns},
	} {
		if _, _, err := f.j.List(ctx, q); !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRejectedFactsChangeNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	stranger := seededSigner(9)
	other := core.ContextNamespace(core.ContextID{9})
	before, _ := f.j.Stats(ctx)

	tests := []struct {
		name string
		sf   func() *SignedFact
		want error
	}{
		{"non-member author", func() *SignedFact {
			sf, _ := SignFact(stranger, Fact{Namespace: f.ns, TypeID: "app.x/v1", Author: stranger.DeviceID(), Lamport: 1})
			return sf
		}, core.ErrPermissionDenied},
		{"unknown namespace", func() *SignedFact {
			sf, _ := SignFact(f.signer, Fact{Namespace: other, TypeID: "app.x/v1", Author: f.signer.DeviceID(), Lamport: 1})
			return sf
		}, core.ErrNotFound},
		{"bad signature", func() *SignedFact {
			sf, _ := SignFact(f.signer, Fact{Namespace: f.ns, TypeID: "app.x/v1", Author: f.signer.DeviceID(), Lamport: 1})
			sf.Signature = bytes.Clone(sf.Signature)
			sf.Signature[0] ^= 1
			return sf
		}, core.ErrInvalidArgument},
		{"reserved type", func() *SignedFact {
			sf, _ := SignFact(f.signer, Fact{Namespace: f.ns, TypeID: "aura.unknown/v1", Author: f.signer.DeviceID(), Lamport: 1})
			return sf
		}, core.ErrInvalidArgument},
		{"genesis of a new namespace", func() *SignedFact {
			g := Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Nonce: [16]byte{7}, Members: []Member{{Device: f.signer.DeviceID()}}}
			p, _ := g.Encode()
			sf, _ := SignFact(f.signer, Fact{Namespace: NamespaceOf(core.NamespaceAuthority, p), TypeID: TypeGenesis, Payload: p, Author: f.signer.DeviceID(), Lamport: 99})
			return sf
		}, nil},
		{"genesis claiming an existing namespace", func() *SignedFact {
			g := Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Nonce: [16]byte{5}, Members: []Member{{Device: f.signer.DeviceID()}}}
			p, _ := g.Encode()
			sf, _ := SignFact(f.signer, Fact{Namespace: f.ns, TypeID: TypeGenesis, Payload: p, Author: f.signer.DeviceID(), Lamport: 99})
			return sf
		}, core.ErrAlreadyExists},
	}
	added := uint64(0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.j.Append(ctx, tc.sf())
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				added++
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	after, _ := f.j.Stats(ctx)
	if after.Facts != before.Facts+added {
		t.Fatalf("facts %d -> %d, %d expected to be added", before.Facts, after.Facts, added)
	}
}

func TestDuplicateIsReportedNotStored(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sf, c, err := f.j.AppendLocal(ctx, f.signer, Draft{Namespace: f.ns, TypeID: "app.x/v1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.j.Append(ctx, sf)
	if err != nil || !again.Duplicate || again.Seq != c.Seq {
		t.Fatalf("duplicate: %+v %v", again, err)
	}
}

func TestTxnIsAllOrNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sf, err := f.j.SignLocal(f.signer, Draft{Namespace: f.ns, TypeID: "app.x/v1"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(tx *ExtTx) error {
		b, err := tx.Bucket("test")
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}
	boom := errors.New("boom")
	_, err = f.j.Commit(ctx, Txn{Facts: []*SignedFact{sf}, Ops: []TxOp{put, func(*ExtTx) error { return boom }}})
	if !errors.Is(err, boom) {
		t.Fatalf("commit: %v", err)
	}
	if _, err := f.j.Get(ctx, sf.ID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("fact of a failed txn is stored: %v", err)
	}
	extValue := func() []byte {
		var v []byte
		f.j.db.View(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bucketExt).Bucket([]byte("test")); b != nil {
				v = b.Get([]byte("k"))
			}
			return nil
		})
		return v
	}
	if extValue() != nil {
		t.Fatal("op of a failed txn is stored")
	}
	if _, err := f.j.Commit(ctx, Txn{Facts: []*SignedFact{sf}, Ops: []TxOp{put}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.j.Get(ctx, sf.ID); err != nil || string(extValue()) != "v" {
		t.Fatalf("committed txn incomplete: %v", err)
	}
}

// sumReducer adds up decimal payloads per type: commutative.
type sumReducer struct{}

func (sumReducer) Name() string                    { return "test.sum" }
func (sumReducer) Handles(t string) bool           { return t == "app.sum/v1" }
func (sumReducer) Key(*SignedFact) ([]byte, error) { return []byte("total"), nil }
func (sumReducer) Commutative() bool               { return true }
func (sumReducer) Apply(s []byte, f *SignedFact) ([]byte, error) {
	var n uint64
	if len(s) == 8 {
		n = binary.BigEndian.Uint64(s)
	}
	var d uint64
	fmt.Sscan(string(f.Payload), &d)
	return binary.BigEndian.AppendUint64(nil, n+d), nil
}

// concatReducer concatenates payloads in (lamport, id) order: order-sensitive.
type concatReducer struct{}

func (concatReducer) Name() string                    { return "test.concat" }
func (concatReducer) Handles(t string) bool           { return t == "app.cat/v1" }
func (concatReducer) Key(*SignedFact) ([]byte, error) { return []byte("log"), nil }
func (concatReducer) Commutative() bool               { return false }
func (concatReducer) Apply(s []byte, f *SignedFact) ([]byte, error) {
	return append(bytes.Clone(s), f.Payload...), nil
}

func TestReducersAreMaintainedInOrder(t *testing.T) {
	f := newFixture(t, sumReducer{}, concatReducer{})
	ctx := context.Background()
	author := f.signer
	// Facts arrive out of lamport order, as they would from sync.
	for _, l := range []uint64{30, 10, 20} {
		for _, typ := range []string{"app.sum/v1", "app.cat/v1"} {
			sf, err := SignFact(author, Fact{Namespace: f.ns, TypeID: typ, Author: author.DeviceID(), Lamport: l, Payload: []byte(fmt.Sprint(l / 10))})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.j.Append(ctx, sf); err != nil {
				t.Fatal(err)
			}
		}
	}
	sum, ok, err := f.j.State(ctx, "test.sum", f.ns, []byte("total"))
	if err != nil || !ok || binary.BigEndian.Uint64(sum) != 6 {
		t.Fatalf("sum %v %v %x", err, ok, sum)
	}
	cat, _, _ := f.j.State(ctx, "test.concat", f.ns, []byte("log"))
	if string(cat) != "123" {
		t.Fatalf("order-sensitive state %q, want 123", cat)
	}
}

func TestWatchReplaysThenFollows(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f.append(t, "app.a/v1", "1")
	c2 := f.append(t, "app.b/v1", "2")
	sub, err := f.j.Watch(ctx, WatchOptions{AfterSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 3; i <= 5; i++ {
			f.append(t, "app.a/v1", fmt.Sprint(i))
		}
	}()
	var seqs []uint64
	for range 4 {
		sf, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, sf.Seq)
	}
	wg.Wait()
	if fmt.Sprint(seqs) != "[2 3 4 5]" || seqs[0] != c2.Seq-1 {
		t.Fatalf("seqs %v", seqs)
	}
	typed, _ := f.j.Watch(ctx, WatchOptions{TypeID: "app.b/v1"})
	sf, err := typed.Next(ctx)
	if err != nil || sf.Seq != c2.Seq {
		t.Fatalf("filtered watch: %v %v", sf.Seq, err)
	}
}

func TestConcurrentAppendsAllDurable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[core.FactID]bool{}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				c := f.append(t, "app.x/v1", fmt.Sprint(w, i))
				mu.Lock()
				ids[c.ID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	f.j.Close()
	f.j = open(t, f.path)
	defer f.j.Close()
	for id := range ids {
		if _, err := f.j.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if len(ids) != 400 {
		t.Fatalf("%d distinct ids", len(ids))
	}
}

func TestSchemaVersions(t *testing.T) {
	dir := t.TempDir()
	t.Run("empty file migrates to current", func(t *testing.T) {
		path := filepath.Join(dir, "empty.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		j := open(t, path)
		defer j.Close()
		j.db.View(func(tx *bolt.Tx) error {
			v, err := schemaVersion(tx)
			if err != nil || v != SchemaVersion {
				t.Fatalf("version %d %v", v, err)
			}
			for _, b := range topLevelBuckets {
				if tx.Bucket(b) == nil {
					t.Fatalf("bucket %s missing", b)
				}
			}
			return nil
		})
	})
	t.Run("newer schema is refused", func(t *testing.T) {
		path := filepath.Join(dir, "newer.db")
		db, _ := bolt.Open(path, 0o600, nil)
		db.Update(func(tx *bolt.Tx) error {
			m, _ := tx.CreateBucket(bucketMeta)
			return m.Put(keySchemaVersion, binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
		})
		db.Close()
		_, err := Open(context.Background(), Options{Path: path})
		if !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("locked file", func(t *testing.T) {
		path := filepath.Join(dir, "locked.db")
		j := open(t, path)
		defer j.Close()
		_, err := Open(context.Background(), Options{Path: path, LockTimeout: 50 * time.Millisecond})
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestCommitAsyncKeepsQueueOrder(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var pending []*Pending
	var ids []core.FactID
	for i := range 50 {
		sf, err := f.j.SignLocal(f.signer, Draft{Namespace: f.ns, TypeID: "app.x/v1", Payload: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.j.CommitAsync(ctx, Txn{Facts: []*SignedFact{sf}})
		if err != nil {
			t.Fatal(err)
		}
		pending, ids = append(pending, p), append(ids, sf.ID)
	}
	var last uint64
	for i, p := range pending {
		cs, err := p.Wait(ctx)
		if err != nil || cs[0].ID != ids[i] || cs[0].Seq <= last {
			t.Fatalf("txn %d: %v seq %d after %d", i, err, cs[0].Seq, last)
		}
		last = cs[0].Seq
		if again, _ := p.Wait(ctx); again[0].Seq != last {
			t.Fatal("second Wait differs")
		}
	}
}
