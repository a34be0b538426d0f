package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	"github.com/aura-p2p/aura/internal/progress"
)

func newBackupCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent snapshot of aurad's journal to FILE while it runs",
		Long: `backup streams a consistent hot snapshot of the running daemon's journal into
FILE: every fact, the authority record, budgets, receipts and known peers, as
of one instant, while appends go on. The device's keys are not in it; back
them up separately. Restore with ` + "`aurad restore --from FILE`" + `.

The snapshot is written to FILE.tmp (mode 0600, never over an existing file),
checked against the SHA-256 the daemon sends at the end, fsynced, then renamed
to FILE. An existing FILE is replaced only with --force. A progress bar is
drawn on stderr when it is a terminal. The whole command is bounded by
--timeout only when that flag is given; Ctrl-C stops it and leaves no file.

-o json prints a summary: file, size, sha256, schema_version, fact_count,
last_seq, authority_id, device_id, taken_at, seconds and bytes_per_second.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithCancel(cmd.Context())
			if cmd.Flags().Changed("timeout") {
				ctx, cancel = a.commandContext(cmd.Context())
			}
			defer cancel()
			sum, err := a.backup(ctx, args[0], force)
			if err != nil {
				return err
			}
			return a.printBackup(sum)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE if it exists")
	return cmd
}

// backupSummary is what -o json prints. Not a proto message: the backup is a
// stream, and this describes the file it left.
type backupSummary struct {
	File           string  `json:"file"`
	Size           uint64  `json:"size"`
	SHA256         string  `json:"sha256"`
	SchemaVersion  uint32  `json:"schema_version"`
	FactCount      uint64  `json:"fact_count"`
	LastSeq        uint64  `json:"last_seq"`
	AuthorityID    string  `json:"authority_id"`
	DeviceID       string  `json:"device_id"`
	TakenAt        string  `json:"taken_at"`
	Seconds        float64 `json:"seconds"`
	BytesPerSecond float64 `json:"bytes_per_second"`
}

// backupFailed says, with the cause, that FILE was left untouched (FILE.tmp
// is removed by the caller).
func backupFailed(file string, err error) error {
	if st, ok := grpcStatus(err); ok {
		return status.Errorf(st.Code(), "backup to %s failed, nothing written: %s", file, st.Message())
	}
	return fmt.Errorf("backup to %s failed, nothing written: %w", file, err)
}

func (a *app) backup(ctx context.Context, file string, force bool) (*backupSummary, error) {
	if fi, err := os.Stat(file); err == nil {
		if !fi.Mode().IsRegular() {
			return nil, status.Errorf(codes.InvalidArgument, "%s exists and is not a regular file", file)
		}
		if !force {
			return nil, status.Errorf(codes.AlreadyExists, "%s exists; pass --force to replace it", file)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	conn, err := a.dial()
	if err != nil {
		return nil, err
	}
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, status.Errorf(codes.AlreadyExists, "%s exists: another backup is writing it, or one was killed (then remove it)", tmp)
	}
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	s, err := nodev1.NewNodeServiceClient(conn).Backup(sctx, &nodev1.BackupRequest{})
	if err != nil {
		return nil, backupFailed(file, a.rpcError(ctx, err))
	}
	first, err := s.Recv()
	if err != nil {
		return nil, backupFailed(file, a.rpcError(ctx, err))
	}
	h := first.GetHeader()
	if h == nil {
		return nil, backupFailed(file, status.Errorf(codes.Internal, "aurad's backup stream began with %T, not a header", first.GetPart()))
	}
	bar := progress.New(a.err, "backup", progress.Bytes)
	w := &hashingWriter{w: f, h: sha256.New()}
	var trailer *nodev1.BackupTrailer
	for trailer == nil {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			bar.Finish(false)
			return nil, backupFailed(file, status.Errorf(codes.Internal, "aurad ended the backup after %d of %d bytes without a trailer", w.n, h.GetSize()))
		}
		if err != nil {
			bar.Finish(false)
			return nil, backupFailed(file, a.rpcError(ctx, err))
		}
		switch p := m.GetPart().(type) {
		case *nodev1.BackupResponse_Chunk:
			if w.n+uint64(len(p.Chunk)) > h.GetSize() {
				bar.Finish(false)
				return nil, backupFailed(file, status.Errorf(codes.Internal, "aurad sent more than the %d bytes it announced", h.GetSize()))
			}
			if _, err := w.Write(p.Chunk); err != nil {
				bar.Finish(false)
				return nil, backupFailed(file, err)
			}
			bar.Update(uint64(w.n), h.GetSize())
		case *nodev1.BackupResponse_Trailer:
			trailer = p.Trailer
		default:
			bar.Finish(false)
			return nil, backupFailed(file, status.Errorf(codes.Internal, "unexpected %T in aurad's backup stream", m.GetPart()))
		}
	}
	bar.Finish(true)
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		return nil, backupFailed(file, status.Errorf(codes.Internal, "aurad's backup stream went on after its trailer: %v", err))
	}
	got := w.h.Sum(nil)
	if w.n != h.GetSize() || !bytes.Equal(got, trailer.GetSha256()) {
		// Internal, not DataLoss: aurad's journal is fine, the copy is not
		// (exit code 12 sends people to `aurad check`).
		return nil, backupFailed(file, status.Errorf(codes.Internal, "received %d of %d bytes with SHA-256 %x, but aurad sent %x; try again",
			w.n, h.GetSize(), got, trailer.GetSha256()))
	}
	if err := f.Sync(); err != nil {
		return nil, backupFailed(file, err)
	}
	if err := f.Close(); err != nil {
		return nil, backupFailed(file, err)
	}
	if !force {
		// Someone may have made FILE while the backup ran.
		if _, err := os.Lstat(file); err == nil {
			return nil, status.Errorf(codes.AlreadyExists, "%s appeared while the backup ran; pass --force to replace it", file)
		}
	}
	if err := os.Rename(tmp, file); err != nil {
		return nil, backupFailed(file, err)
	}
	done = true
	if err := syncDir(filepath.Dir(file)); err != nil {
		return nil, fmt.Errorf("backup written to %s, but syncing its directory failed: %w", file, err)
	}
	took := time.Since(start)
	return &backupSummary{
		File: file, Size: w.n, SHA256: hex.EncodeToString(got),
		SchemaVersion: h.GetSchemaVersion(), FactCount: h.GetFactCount(), LastSeq: h.GetLastSeq(),
		AuthorityID: h.GetAuthorityId(), DeviceID: h.GetDeviceId(), TakenAt: h.GetTakenAt().AsTime().Format(time.RFC3339Nano),
		Seconds: took.Seconds(), BytesPerSecond: float64(w.n) / max(took.Seconds(), 1e-9),
	}, nil
}

func (a *app) printBackup(s *backupSummary) error {
	if a.output == outputJSON {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		_, err = a.out.Write(append(b, '\n'))
		return err
	}
	tw := newTabWriter(a.out)
	if err := writeKVs(tw, []kv{
		{"backup", s.File},
		{"size", fmt.Sprintf("%d bytes (%s)", s.Size, progress.Bytes(s.Size))},
		{"sha256", s.SHA256},
		{"facts", fmt.Sprintf("%d (last seq %d, schema %d)", s.FactCount, s.LastSeq, s.SchemaVersion)},
		{"authority", s.AuthorityID},
		{"device", s.DeviceID},
		{"taken at", s.TakenAt},
		{"took", fmt.Sprintf("%s (%s/s)", (time.Duration(s.Seconds * float64(time.Second))).Round(time.Millisecond), progress.Bytes(uint64(s.BytesPerSecond)))},
	}); err != nil {
		return err
	}
	return tw.Flush()
}

type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n uint64
}

func (w *hashingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.h.Write(p[:n])
	w.n += uint64(n)
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// megabytes shows a size in MB, or kB below one MB.
