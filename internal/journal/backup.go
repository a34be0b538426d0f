package journal

import (
	"context"
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// SnapshotInfo describes a snapshot. Every field is read in the transaction
// that the snapshot's bytes come from, so they agree with the file exactly.
type SnapshotInfo struct {
	// Size is the number of bytes WriteTo writes.
	Size          int64
	SchemaVersion uint32
	Facts         uint64
	// LastSeq is the seq of the last fact in the snapshot: it holds every fact
	// up to it and none after.
	LastSeq uint64
}

// Snapshot is a consistent view of the whole store, held by one bbolt read
// transaction, so appends go on while it is copied out. Close it promptly:
// while it is open, commits cannot reuse the pages they free, so the file
// grows and appends slow down (bench/backup_test.go measures by how much),
// and a commit that must grow bbolt's memory map waits until it closes.
type Snapshot struct {
	j    *Journal
	tx   *bolt.Tx
	info SnapshotInfo
}

// Snapshot opens a snapshot of the store as of the last commit.
func (j *Journal) Snapshot(ctx context.Context) (*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Snapshot{j: j}
	err := guarded(func() error {
		tx, err := j.db.Begin(false)
		if err != nil {
			return err
		}
		s.tx = tx
		if s.info.SchemaVersion, err = schemaVersion(tx); err != nil {
			return err
		}
		m := tx.Bucket(bucketMeta)
		s.info.Size = tx.Size()
		s.info.Facts = getU64(m.Get(keyFactCount))
		s.info.LastSeq = getU64(m.Get(keyLastSeq))
		return nil
	})
	switch {
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		return nil, ErrClosed
	case err != nil:
		_ = s.Close()
		j.noteDamage(err)
		return nil, fmt.Errorf("open snapshot: %w", err)
	}
	return s, nil
}

// Info describes the snapshot.
func (s *Snapshot) Info() SnapshotInfo { return s.info }

// ViewExt reads the extension bucket ext/<owner> as of the snapshot; b is nil
// if the owner has never written. b is valid only inside fn.
func (s *Snapshot) ViewExt(owner string, fn func(b *bolt.Bucket) error) error {
	err := guarded(func() error { return fn(s.tx.Bucket(bucketExt).Bucket([]byte(owner))) })
	s.j.noteDamage(err)
	return err
}

// WriteTo writes the snapshot, a complete bbolt file that Open accepts, to w.
// progress, if set, is called once with written 0 before any byte and after
// every write. A cancelled ctx stops the copy at the next write.
func (s *Snapshot) WriteTo(ctx context.Context, w io.Writer, progress func(written, total int64)) (int64, error) {
	if progress != nil {
		progress(0, s.info.Size)
	}
	cw := &ctxWriter{ctx: ctx, w: w, total: s.info.Size, progress: progress}
	var n int64
	err := guarded(func() error {
		var err error
		n, err = s.tx.WriteTo(cw)
		return err
	})
	switch {
	case cw.err != nil:
		// bbolt flattens the writer's error into a string for the meta
		// pages; the one we kept still says whether it was a cancel.
		return n, fmt.Errorf("backup after %d of %d bytes: %w", n, s.info.Size, cw.err)
	case err != nil:
		// The copy reads the file itself, not the map: an error here is
		// the disk failing under the journal.
		if !errors.Is(err, ErrDamaged) {
			err = fmt.Errorf("%w: reading the file for a backup: %v", ErrDamaged, err)
		}
		s.j.noteDamage(err)
		return n, err
	case n != s.info.Size:
		return n, fmt.Errorf("backup wrote %d bytes, snapshot has %d: %w", n, s.info.Size, core.ErrInternal)
	}
	return n, nil
}

// Close ends the snapshot's transaction. Safe to call more than once.
func (s *Snapshot) Close() error {
	if s == nil || s.tx == nil {
		return nil
	}
	err := s.tx.Rollback()
	s.tx = nil
	return err
}

// Backup writes a consistent hot snapshot of the whole store to w and returns
// its size. Appends go on while it runs (see Snapshot for what an open
// snapshot costs them). progress, if set, sees (0, total) first, then every
// write.
func (j *Journal) Backup(ctx context.Context, w io.Writer, progress func(written, total int64)) (int64, error) {
	s, err := j.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return s.WriteTo(ctx, w, progress)
}

// ctxWriter stops a copy when its context ends and counts what went through.
type ctxWriter struct {
	ctx      context.Context
	w        io.Writer
	n, total int64
	progress func(written, total int64)
	// err is the first error of a write, kept because bbolt reports some
	// with %s and loses the chain.
	err error
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		c.err = err
		return n, err
	}
	if c.progress != nil {
		c.progress(c.n, c.total)
	}
	return n, nil
}
