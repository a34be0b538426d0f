package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// appendersUntil runs n goroutines appending facts until stop is closed. It
// returns a wait func yielding the first append error, and a counter of
// acknowledged appends.
func appendersUntil(f *fixture, n int, stop <-chan struct{}) (wait func() error, acked *atomic.Int64) {
	acked = new(atomic.Int64)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for w := range n {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _, err := f.j.AppendLocal(context.Background(), f.signer, Draft{
					Namespace: f.ns, TypeID: "app.x/v1", Payload: fmt.Appendf(nil, "%d/%d", w, i),
				})
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				acked.Add(1)
			}
		})
	}
	return func() error {
		wg.Wait()
		if e := firstErr.Load(); e != nil {
			return *e
		}
		return nil
	}, acked
}

// A backup taken while appends run opens as a journal and holds exactly the
// facts with seq up to its last_seq: each with the same id as in the live
// journal, and nothing after it.
func TestBackupUnderConcurrentAppendsIsPrefixConsistent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 500 {
		f.append(t, "app.note/v1", fmt.Sprint(i))
	}
	freePages(t, f.j, 8<<20)
	stop := make(chan struct{})
	wait, acked := appendersUntil(f, 8, stop)

	out := filepath.Join(t.TempDir(), "snap.db")
	file, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var calls []int64
	var total int64
	n, err := f.j.Backup(ctx, file, func(written, tot int64) {
		if written == 0 {
			// Hold the snapshot open until more appends have committed,
			// so the copy provably overlaps them.
			for start := acked.Load(); acked.Load() < start+200; {
				runtime.Gosched()
			}
		}
		calls = append(calls, written)
		total = tot
	})
	close(stop)
	if werr := wait(); werr != nil {
		t.Fatalf("append during backup: %v", werr)
	}
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != n || n != total {
		t.Fatalf("backup size: file %v (%v), returned %d, total %d", fi.Size(), err, n, total)
	}
	if len(calls) < 2 || calls[0] != 0 || calls[len(calls)-1] != n {
		t.Fatalf("progress calls %v, want 0 first and %d last", calls[:min(len(calls), 5)], n)
	}

	rep, err := CheckFile(ctx, out, CheckOptions{Full: true})
	if err != nil {
		t.Fatalf("check of the backup: %v (%+v)", err, rep)
	}
	live, err := f.j.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap := open(t, out)
	defer snap.Close()
	st, err := snap.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSeq == 0 || st.LastSeq >= live.LastSeq {
		t.Fatalf("snapshot last_seq %d, live %d: the backup did not overlap the appends", st.LastSeq, live.LastSeq)
	}
	if rep.Verified != st.Facts {
		t.Fatalf("check verified %d facts of %d", rep.Verified, st.Facts)
	}
	if st.Facts != st.LastSeq {
		t.Fatalf("snapshot holds %d facts but last_seq %d", st.Facts, st.LastSeq)
	}
	liveIDs := seqIDs(t, f.j)
	snapIDs := seqIDs(t, snap)
	if uint64(len(snapIDs)) != st.LastSeq {
		t.Fatalf("snapshot log has %d entries, want %d", len(snapIDs), st.LastSeq)
	}
	for seq := uint64(1); seq <= st.LastSeq; seq++ {
		id, ok := snapIDs[seq]
		if !ok {
			t.Fatalf("snapshot lacks seq %d", seq)
		}
		if id != liveIDs[seq] {
			t.Fatalf("seq %d is %s in the snapshot, %s live", seq, id, liveIDs[seq])
		}
		if _, err := snap.Get(ctx, id); err != nil {
			t.Fatalf("snapshot fact %d: %v", seq, err)
		}
	}
	// The restored journal takes appends, continuing after its last seq.
	if _, c, err := snap.AppendLocal(ctx, f.signer, Draft{Namespace: f.ns, TypeID: "app.note/v1", Payload: []byte("after")}); err != nil || c.Seq != st.LastSeq+1 {
		t.Fatalf("append to the restored journal: seq %d, %v", c.Seq, err)
	}
}

// freePages writes size bytes into a scratch bucket and deletes it, leaving
// that much of the file free. bbolt grows its memory map only once no read
// transaction is open, so a commit that needs more room waits for an open
// snapshot to end; a test that holds a snapshot open until appends commit
// needs the room to exist beforehand.
func freePages(t *testing.T, j *Journal, size int) {
	t.Helper()
	val := make([]byte, 4000)
	err := j.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("scratch"))
		if err != nil {
			return err
		}
		for i := range size / len(val) {
			if err := b.Put(u64(uint64(i)), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = j.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("scratch")) })
	}
	if err != nil {
		t.Fatal(err)
	}
}

// seqIDs reads the commit log: seq -> fact id, checking each entry's id index.
func seqIDs(t *testing.T, j *Journal) map[uint64]core.FactID {
	t.Helper()
	out := map[uint64]core.FactID{}
	err := j.db.View(func(tx *bolt.Tx) error {
		ids := tx.Bucket(bucketIDs)
		return tx.Bucket(bucketLog).ForEach(func(k, v []byte) error {
			loc, err := decodeLogEntry(getU64(k), v)
			if err != nil {
				return err
			}
			back, err := decodeIDEntry(loc.key.ID, ids.Get(loc.key.ID[:]))
			if err != nil || back.seq != loc.seq {
				return fmt.Errorf("id index of seq %d: %+v %v", loc.seq, back, err)
			}
			out[loc.seq] = loc.key.ID
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// failWriter fails once it has taken limit bytes.
type failWriter struct {
	limit, n int
	err      error
}

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		return 0, w.err
	}
	w.n += len(p)
	return len(p), nil
}

func TestBackupStopsOnCancelAndWriterError(t *testing.T) {
	f := newFixture(t)
	for i := range 200 {
		f.append(t, "app.note/v1", fmt.Sprint(i))
	}
	errDisk := errors.New("disk full")
	for _, tc := range []struct {
		name   string
		cancel bool
		w      *failWriter
		want   error
	}{
		{"cancelled mid-copy", true, &failWriter{limit: 1 << 30}, context.Canceled},
		{"writer fails on the meta page", false, &failWriter{limit: 0, err: errDisk}, errDisk},
		{"writer fails on data", false, &failWriter{limit: 64 << 10, err: errDisk}, errDisk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := f.j.Backup(ctx, tc.w, func(written, _ int64) {
				if tc.cancel && written > 0 {
					cancel()
				}
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A failed backup leaves the journal working, and Close does not wait on
	// a snapshot left open.
	f.append(t, "app.note/v1", "after")
	if err := f.j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.j.Backup(context.Background(), &bytes.Buffer{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("backup of a closed journal: %v", err)
	}
}

// The snapshot's info and extension buckets are read in its own transaction:
// a commit after it opened changes neither.
func TestSnapshotInfoAndExtAreOfTheSnapshot(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	put := func(v string) {
		t.Helper()
		_, err := f.j.Commit(ctx, Txn{Ops: []TxOp{func(tx *ExtTx) error {
			b, err := tx.Bucket("test")
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte(v))
		}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	put("before")
	s, err := f.j.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put("after")
	f.append(t, "app.note/v1", "after")
	info := s.Info()
	if info.Facts != 1 || info.LastSeq != 1 || info.SchemaVersion != SchemaVersion || info.Size <= 0 {
		t.Fatalf("info %+v", info)
	}
	var got string
	if err := s.ViewExt("test", func(b *bolt.Bucket) error { got = string(b.Get([]byte("k"))); return nil }); err != nil || got != "before" {
		t.Fatalf("ext in snapshot: %q %v", got, err)
	}
	var buf bytes.Buffer
	if n, err := s.WriteTo(ctx, &buf, nil); err != nil || n != info.Size || int64(buf.Len()) != n {
		t.Fatalf("write: %d %v (size %d)", n, err, info.Size)
	}
}
