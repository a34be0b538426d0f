package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// pristine is a closed journal file with facts in two namespaces, reducer
// state and an extension store, and what it holds.
type pristine struct {
	path  string
	ids   map[core.FactID]bool
	ext   map[string]string
	pages uint64
}

// buildPristine writes n facts in batches (one commit each, so building is
// quick) and an extension store of 200 keys.
func buildPristine(t testing.TB, dir string, n int) *pristine {
	t.Helper()
	path := filepath.Join(dir, "journal.db")
	j, err := Open(context.Background(), Options{Path: path, Reducers: []Reducer{sumReducer{}}, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	p := &pristine{path: path, ids: map[core.FactID]bool{}, ext: map[string]string{}}
	a, b := seededSigner(1), seededSigner(2)
	nsA := foundTB(t, j, a, a)
	nsB := foundTB(t, j, b, a, b)
	for _, ns := range []core.Namespace{nsA, nsB} {
		st, _, _ := j.List(context.Background(), ListQuery{Namespace: &ns, PageSize: MaxPageSize})
		for _, f := range st {
			p.ids[f.ID] = true
		}
	}
	const batch = 250
	for i := 0; i < n; i += batch {
		var txn Txn
		for k := i; k < min(i+batch, n); k++ {
			signer, ns := a, nsA
			if k%3 == 0 {
				signer, ns = b, nsB
			}
			typ := "app.note/v1"
			if k%5 == 0 {
				typ = "app.sum/v1"
			}
			sf, err := j.SignLocal(signer, Draft{Namespace: ns, TypeID: typ, Payload: []byte(fmt.Sprintf("fact %06d %s", k, bytes.Repeat([]byte{'x'}, 150)))})
			if err != nil {
				t.Fatal(err)
			}
			txn.Facts = append(txn.Facts, sf)
			p.ids[sf.ID] = true
		}
		if _, err := j.Commit(context.Background(), txn); err != nil {
			t.Fatal(err)
		}
	}
	_, err = j.Commit(context.Background(), Txn{Ops: []TxOp{func(tx *ExtTx) error {
		bk, err := tx.Bucket("test.owner")
		if err != nil {
			return err
		}
		sub, err := bk.Sub([]byte("nested"))
		if err != nil {
			return err
		}
		for i := range 200 {
			k, v := fmt.Sprintf("k%03d", i), fmt.Sprintf("v%03d", i)
			p.ext[k] = v
			if err := sub.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := readMetasFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p.pages = m.pgid
	return p
}

func foundTB(t testing.TB, j *Journal, author *KeySigner, members ...*KeySigner) core.Namespace {
	t.Helper()
	g := Genesis{Kind: core.NamespaceContext, Threshold: 1}
	for _, m := range members {
		g.Members = append(g.Members, Member{Device: m.DeviceID()})
	}
	payload, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ns := NamespaceOf(core.NamespaceContext, payload)
	if _, _, err := j.AppendLocal(context.Background(), author, Draft{Namespace: ns, TypeID: TypeGenesis, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func readMetasFile(path string) (boltMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return boltMeta{}, err
	}
	defer f.Close()
	fi, _ := f.Stat()
	return readMetas(f, fi.Size())
}

func (p *pristine) copyTo(t testing.TB, dir string) string {
	t.Helper()
	b, err := os.ReadFile(p.path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "damaged.db")
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

type damage func(t testing.TB, path string, p *pristine)

func truncateTo(size int64) damage {
	return func(t testing.TB, path string, _ *pristine) {
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
	}
}

func zeroPages(n int, seed uint64) damage {
	return func(t testing.TB, path string, p *pristine) {
		rng := rand.New(rand.NewPCG(seed, seed))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zero := make([]byte, 4096)
		for range n {
			pg := 2 + rng.Uint64N(p.pages-2)
			if _, err := f.WriteAt(zero, int64(pg)*4096); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func flipBytes(n int, seed uint64) damage {
	return func(t testing.TB, path string, p *pristine) {
		rng := rand.New(rand.NewPCG(seed, seed))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			off := 2*4096 + rng.IntN(int(p.pages-2)*4096)
			b[off] ^= byte(1 + rng.IntN(255))
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// readEverything reads every fact the journal admits to, by every read path,
// and returns how many verified facts it served. Any error must say data
// loss: damage is never reported as a client's mistake or as a bug.
func readEverything(t testing.TB, j *Journal, p *pristine) (served int, sawDamage bool) {
	t.Helper()
	ctx := context.Background()
	check := func(err error) bool {
		if err == nil {
			return false
		}
		if !errors.Is(err, core.ErrDataLoss) {
			t.Fatalf("damage reported as %v, want a data-loss error", err)
		}
		sawDamage = true
		return true
	}
	token := ""
	for {
		page, next, err := j.List(ctx, ListQuery{PageSize: MaxPageSize, PageToken: token})
		if check(err) {
			break
		}
		for _, f := range page {
			if !p.ids[f.ID] {
				t.Fatalf("served fact %s that was never written", f.ID)
			}
			served++
		}
		if next == "" {
			break
		}
		token = next
	}
	sampled := 0
	for id := range p.ids {
		if sampled++; sampled > 300 {
			break
		}
		st, err := j.Get(ctx, id)
		if errors.Is(err, core.ErrNotFound) || check(err) {
			continue
		}
		if st.ID != id {
			t.Fatalf("Get(%s) served %s", id, st.ID)
		}
	}
	_, err := j.Stats(ctx)
	check(err)
	check(j.ViewExt(ctx, "test.owner", func(b *ExtStore) error {
		if b == nil {
			return nil
		}
		if sub := b.SubIfExists([]byte("nested")); sub != nil {
			return sub.ForEach(func(k, v []byte) error { return nil })
		}
		return nil
	}))
	return served, sawDamage
}

// TestDamagedJournals damages real files the ways disks and people do and
// checks that each one is refused at open, or opens and serves only intact
// facts, fails the store on the first damage it meets, and salvages.
func TestDamagedJournals(t *testing.T) {
	p := buildPristine(t, t.TempDir(), 1500)
	fi, err := os.Stat(p.path)
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	t.Logf("pristine journal: %d facts, %d bytes, %d pages", len(p.ids), size, p.pages)
	cases := []struct {
		name string
		damage
		refused bool // must be refused at open
	}{
		{"intact", func(testing.TB, string, *pristine) {}, false},
		{"empty file", truncateTo(0), true},
		{"truncated to 8 KiB", truncateTo(8192), true},
		{"truncated to 1 MiB", truncateTo(1 << 20), true},
		{"truncated to half its pages", truncateTo(int64(p.pages) * 4096 / 2), true},
		{"truncated past its pages (harmless: bbolt grows files ahead)", truncateTo(int64(p.pages) * 4096), false},
		{"truncated below the high-water mark", truncateTo(int64(p.pages-1) * 4096), true},
		{"50 zeroed pages", zeroPages(50, 1), false},
		{"50 other zeroed pages", zeroPages(50, 2), false},
		{"200 flipped bytes", flipBytes(200, 3), false},
		{"200 other flipped bytes", flipBytes(200, 4), false},
		{"meta page 0 zeroed", func(t testing.TB, path string, _ *pristine) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			defer f.Close()
			f.WriteAt(make([]byte, 4096), 0)
		}, false},
		{"both meta pages zeroed", func(t testing.TB, path string, _ *pristine) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			defer f.Close()
			f.WriteAt(make([]byte, 8192), 0)
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := p.copyTo(t, dir)
			tc.damage(t, path, p)
			ctx := context.Background()

			rep, checkErr := CheckFile(ctx, path, CheckOptions{Full: true})
			if tc.name == "intact" && checkErr != nil {
				t.Fatalf("check of an intact file: %v", checkErr)
			}
			if checkErr != nil && !errors.Is(checkErr, ErrDamaged) {
				t.Fatalf("check: %v, want ErrDamaged", checkErr)
			}

			j, err := Open(ctx, Options{Path: path, Reducers: []Reducer{sumReducer{}}})
			switch {
			case err != nil:
				if !errors.Is(err, ErrDamaged) {
					t.Fatalf("open refused with %v, want ErrDamaged", err)
				}
				if checkErr == nil {
					t.Fatalf("open refused (%v) a file the full check passed", err)
				}
			case tc.refused:
				j.Close()
				t.Fatal("open accepted a file it must refuse")
			default:
				served, sawDamage := readEverything(t, j, p)
				if sawDamage {
					if j.Failure() == nil {
						t.Fatal("damage met while reading did not fail the store")
					}
					if _, _, err := j.AppendLocal(ctx, seededSigner(1), Draft{Namespace: firstNS(t, j), TypeID: "app.note/v1", Payload: []byte("after damage")}); !errors.Is(err, ErrStoreFailed) {
						t.Fatalf("append on a failed store: %v, want ErrStoreFailed", err)
					}
					select {
					case <-j.Failed():
					default:
						t.Fatal("Failed() not closed")
					}
				}
				if !sawDamage && served != len(p.ids) && checkErr == nil {
					t.Fatalf("served %d of %d facts without reporting damage", served, len(p.ids))
				}
				if tc.name == "intact" && (sawDamage || served != len(p.ids)) {
					t.Fatalf("intact file: served %d of %d, damage %v", served, len(p.ids), sawDamage)
				}
				j.Close()
			}
			if checkErr != nil {
				t.Logf("check found %d problem(s), first: %s", len(rep.Problems)+rep.MoreProblems, rep.Problems[0])
			}

			// Salvage into a fresh journal: what comes out verifies, and
			// from an intact file everything does.
			to, err := Open(ctx, Options{Path: filepath.Join(dir, "salvaged.db"), Reducers: []Reducer{sumReducer{}}, NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer to.Close()
			srep, err := Salvage(ctx, path, to, nil)
			if err != nil {
				t.Fatalf("salvage: %v", err)
			}
			t.Logf("salvaged %d of %d facts (rejected %d), lost ids known: %d, ext copied %v lost %v",
				srep.FactsRecovered, len(p.ids), srep.FactsRejected, srep.LostCount, srep.ExtCopied, srep.ExtLost)
			served, sawDamage := readEverything(t, to, p)
			if sawDamage || uint64(served) != srep.FactsRecovered {
				t.Fatalf("salvaged journal serves %d (damage %v), report says %d", served, sawDamage, srep.FactsRecovered)
			}
			if tc.name == "intact" {
				if int(srep.FactsRecovered) != len(p.ids) || srep.LostCount != 0 || len(srep.ExtLost) != 0 {
					t.Fatalf("salvage of an intact file: %+v", srep)
				}
				got := map[string]string{}
				to.ViewExt(ctx, "test.owner", func(b *ExtStore) error {
					return b.SubIfExists([]byte("nested")).ForEach(func(k, v []byte) error {
						got[string(k)] = string(v)
						return nil
					})
				})
				if len(got) != len(p.ext) {
					t.Fatalf("ext copied %d of %d keys", len(got), len(p.ext))
				}
			}
			if size > 0 && tc.name != "empty file" && srep.FactsRecovered == 0 && tc.name != "truncated to 8 KiB" {
				t.Fatal("salvage recovered nothing")
			}
			if _, err := CheckFile(ctx, filepath.Join(dir, "salvaged.db"), CheckOptions{}); err == nil {
				t.Fatal("check of an open journal must fail on the lock")
			}
		})
	}
}

func firstNS(t testing.TB, j *Journal) core.Namespace {
	t.Helper()
	var ns core.Namespace
	err := j.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketNamespaces).Cursor().First()
		var err error
		ns, err = parseNSKey(k)
		return err
	})
	if err != nil {
		t.Skip("namespaces unreadable")
	}
	return ns
}

// TestOpenCheckNames says what is wrong in words an operator can act on.
func TestOpenCheckNames(t *testing.T) {
	p := buildPristine(t, t.TempDir(), 300)
	for _, tc := range []struct {
		name string
		damage
		want string
	}{
		{"empty", truncateTo(0), "is empty"},
		{"truncated", truncateTo(8192), "truncated"},
		{"both metas", func(t testing.TB, path string, _ *pristine) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			defer f.Close()
			f.WriteAt(make([]byte, 8192), 0)
		}, "both meta pages are invalid"},
		{"freelist", func(t testing.TB, path string, p *pristine) {
			m, _ := readMetasFile(path)
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			defer f.Close()
			f.WriteAt(binary.LittleEndian.AppendUint16(nil, leafPageFlag), int64(m.freelist)*4096+8)
		}, "freelist page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := p.copyTo(t, t.TempDir())
			tc.damage(t, path, p)
			_, err := Open(context.Background(), Options{Path: path})
			if !errors.Is(err, ErrDamaged) || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("open: %v, want ErrDamaged saying %q", err, tc.want)
			}
		})
	}
}

// FuzzDamagedJournal opens journal files damaged in arbitrary ways. Whatever
// the damage, nothing may escape as a crash: open refuses, or reads serve
// intact facts and report the rest as data loss; check and salvage finish.
func FuzzDamagedJournal(f *testing.F) {
	p := buildPristine(f, f.TempDir(), 400)
	pristineBytes, err := os.ReadFile(p.path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint32(0), []byte{})
	f.Add(uint32(8192), []byte{1, 0, 0, 0, 0})
	f.Add(uint32(0), []byte{0x10, 0, 0, 0, 0xff, 0x20, 0, 0, 0, 0})
	f.Add(uint32(len(pristineBytes)/2), []byte{})
	f.Fuzz(func(t *testing.T, truncate uint32, edits []byte) {
		b := bytes.Clone(pristineBytes)
		// Each edit is offset(4, in units of 8 bytes) ‖ value(1).
		for len(edits) >= 5 {
			off := int(binary.LittleEndian.Uint32(edits)) % (len(b) / 8) * 8
			b[off] ^= edits[4] | 1
			edits = edits[5:]
		}
		if truncate != 0 && int(truncate) < len(b) {
			b = b[:truncate]
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "journal.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := CheckFile(ctx, path, CheckOptions{Full: true}); err != nil && !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("check: %v", err)
		}
		if j, err := Open(ctx, Options{Path: path, NoSync: true}); err == nil {
			readEverything(t, j, p)
			j.Close()
		} else if !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("open: %v", err)
		}
		to, err := Open(ctx, Options{Path: filepath.Join(dir, "salvaged.db"), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer to.Close()
		if _, err := Salvage(ctx, path, to, nil); err != nil {
			t.Fatalf("salvage: %v", err)
		}
	})
}

// BenchmarkQuickCheck is the structural check every Open runs before bbolt
// maps the file. It reads the two meta pages, the root and the freelist, so
// its cost does not grow with the journal (AURA_BENCH_JOURNAL names a large
// journal file to measure instead of the small one built here).
func BenchmarkQuickCheck(b *testing.B) {
	path := os.Getenv("AURA_BENCH_JOURNAL")
	if path == "" {
		path = buildPristine(b, b.TempDir(), 2000).path
	}
	b.ResetTimer()
	for range b.N {
		if err := quickCheck(path); err != nil {
			b.Fatal(err)
		}
	}
}

// A namespace of a few small facts lives in an inline bucket, inside its
// parent's leaf; salvage must find those facts too.
func TestSalvageFindsFactsInInlineBuckets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	from := filepath.Join(dir, "small.db")
	j, err := Open(ctx, Options{Path: from, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	a := seededSigner(1)
	ns := foundTB(t, j, a, a)
	want := 1
	for i := range 2 {
		if _, _, err := j.AppendLocal(ctx, a, Draft{Namespace: ns, TypeID: "app.note/v1", Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
		want++
	}
	j.Close()
	to, err := Open(ctx, Options{Path: filepath.Join(dir, "salvaged.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	rep, err := Salvage(ctx, from, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	if int(rep.FactsRecovered) != want || rep.LostCount != 0 {
		t.Fatalf("salvaged %d of %d facts (lost %d)", rep.FactsRecovered, want, rep.LostCount)
	}
}

// BenchmarkOpen is Journal.Open and Close of an existing journal: the open
// check, bbolt's open, the schema check and the namespace records
// (AURA_BENCH_JOURNAL names a large journal file; it is migrated in place on
// the first open if its schema is older).
func BenchmarkOpen(b *testing.B) {
	path := os.Getenv("AURA_BENCH_JOURNAL")
	if path == "" {
		path = buildPristine(b, b.TempDir(), 2000).path
	}
	b.ResetTimer()
	for range b.N {
		j, err := Open(context.Background(), Options{Path: path})
		if err != nil {
			b.Fatal(err)
		}
		j.Close()
	}
}

// A store of schema 2 has no checksums: migrated, its facts are still
// served, checked by signature (a damaged one refused), and facts written
// after the migration get checksums.
func TestMigrateSumsV2ToV3(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	a := seededSigner(1)
	j := open(t, path)
	ns := found(t, j, a, core.NamespaceAuthority, a)
	old, _, err := j.AppendLocal(ctx, a, Draft{Namespace: ns, TypeID: "chat", Payload: []byte("before")})
	if err != nil {
		t.Fatal(err)
	}
	damaged, _, err := j.AppendLocal(ctx, a, Draft{Namespace: ns, TypeID: "chat", Payload: []byte("damaged")})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	rewrite(t, path, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketSums); err != nil {
			return err
		}
		flipSignature(t, tx, ns, FactKey{Lamport: damaged.Lamport, ID: damaged.ID})
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, binary.BigEndian.AppendUint32(nil, 2))
	})

	j = open(t, path)
	defer j.Close()
	j.db.View(func(tx *bolt.Tx) error {
		if v, _ := schemaVersion(tx); v != SchemaVersion || tx.Bucket(bucketSums) == nil {
			t.Errorf("schema %d after migration, sums/ %v", v, tx.Bucket(bucketSums) != nil)
		}
		return nil
	})
	if _, err := j.Get(ctx, old.ID); err != nil {
		t.Fatalf("fact stored before the migration: %v", err)
	}
	c, _, err := j.AppendLocal(ctx, a, Draft{Namespace: ns, TypeID: "chat", Payload: []byte("after")})
	if err != nil {
		t.Fatal(err)
	}
	j.db.View(func(tx *bolt.Tx) error {
		if sumIn(sumsOf(tx, nsKey(ns)), factKey(FactKey{Lamport: c.Lamport, ID: c.ID})) == nil {
			t.Error("a fact written after the migration has no checksum")
		}
		return nil
	})
	// Last: a damaged read fails the journal, which then refuses writes.
	if _, err := j.Get(ctx, damaged.ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged fact stored before the migration: %v, want ErrCorrupt", err)
	}
}

// A checksum only stands in for the signature check of the bytes it was
// written with: a fact whose signature bytes changed on disk is refused,
// and a fact whose checksum changed is checked by signature and served.
func TestSumsDoNotVouchForChangedBytes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	a := seededSigner(1)
	j := open(t, path)
	ns := found(t, j, a, core.NamespaceAuthority, a)
	var ids []*SignedFact
	for _, p := range []string{"signature damaged", "checksum damaged", "intact"} {
		c, _, err := j.AppendLocal(ctx, a, Draft{Namespace: ns, TypeID: "chat", Payload: []byte(p)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c)
	}
	j.Close()
	rewrite(t, path, func(tx *bolt.Tx) error {
		flipSignature(t, tx, ns, FactKey{Lamport: ids[0].Lamport, ID: ids[0].ID})
		b := sumsOf(tx, nsKey(ns))
		k := factKey(FactKey{Lamport: ids[1].Lamport, ID: ids[1].ID})
		sum := bytes.Clone(b.Get(k))
		sum[0] ^= 1
		return b.Put(k, sum)
	})
	j = open(t, path)
	defer j.Close()
	if _, err := j.Get(ctx, ids[0].ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("fact with a damaged signature: %v, want ErrCorrupt", err)
	}
	for _, c := range ids[1:] {
		if _, err := j.Get(ctx, c.ID); err != nil {
			t.Fatalf("fact %s: %v", c.ID, err)
		}
	}
	// Ranges and lists read through the same check.
	err := j.Range(ctx, ns, FactKey{}, FactKey{}, func(StoredFact) bool { return true })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("range over the damaged fact: %v, want ErrCorrupt", err)
	}
}

// rewrite changes the closed journal file at path with fn.
func rewrite(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// flipSignature changes the last byte of the stored fact's signature.
func flipSignature(t *testing.T, tx *bolt.Tx, ns core.Namespace, key FactKey) {
	t.Helper()
	b := tx.Bucket(bucketFacts).Bucket(nsKey(ns))
	raw := bytes.Clone(b.Get(factKey(key)))
	if raw == nil {
		t.Fatalf("fact %s not stored", key.ID)
	}
	raw[len(raw)-1] ^= 1
	if err := b.Put(factKey(key), raw); err != nil {
		t.Fatal(err)
	}
}
