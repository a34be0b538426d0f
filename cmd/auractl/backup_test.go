package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
)

// backupNode serves one canned backup stream, broken in the way asked.
type backupNode struct {
	nodev1.UnimplementedNodeServiceServer
	data      []byte
	badSum    bool  // the trailer's hash is wrong
	noTrailer bool  // the stream ends after the data
	failAt    int   // > 0: fail with failErr after this many bytes
	failErr   error // status sent at failAt
	overrun   bool  // the header announces fewer bytes than are sent
	block     bool  // after the header, wait for the client to give up
}

func (b *backupNode) Backup(_ *nodev1.BackupRequest, s grpc.ServerStreamingServer[nodev1.BackupResponse]) error {
	size := uint64(len(b.data))
	if b.overrun {
		size--
	}
	err := s.Send(&nodev1.BackupResponse{Part: &nodev1.BackupResponse_Header{Header: &nodev1.BackupHeader{
		Size: size, SchemaVersion: 1, FactCount: 7, LastSeq: 7,
		AuthorityId: strings.Repeat("a", 64), DeviceId: strings.Repeat("d", 64), TakenAt: timestamppb.New(time.Unix(1700000000, 0)),
	}}})
	if err != nil {
		return err
	}
	if b.block {
		<-s.Context().Done()
		return s.Context().Err()
	}
	const chunk = 1000
	for off := 0; off < len(b.data); off += chunk {
		if b.failAt > 0 && off >= b.failAt {
			return b.failErr
		}
		if err := s.Send(&nodev1.BackupResponse{Part: &nodev1.BackupResponse_Chunk{Chunk: b.data[off:min(off+chunk, len(b.data))]}}); err != nil {
			return err
		}
	}
	if b.noTrailer {
		return nil
	}
	sum := sha256.Sum256(b.data)
	if b.badSum {
		sum[0] ^= 1
	}
	return s.Send(&nodev1.BackupResponse{Part: &nodev1.BackupResponse_Trailer{Trailer: &nodev1.BackupTrailer{Sha256: sum[:]}}})
}

func serveBackup(t *testing.T, b *backupNode) string {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "aurad.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	nodev1.RegisterNodeServiceServer(srv, b)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return sock
}

func snapshotBytes(t *testing.T) []byte {
	t.Helper()
	data := make([]byte, 10_500)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBackupWritesVerifiedFile(t *testing.T) {
	data := snapshotBytes(t)
	sock := serveBackup(t, &backupNode{data: data})
	file := filepath.Join(shortTempDir(t), "aura.backup")

	r := runCtl(t, nil, nil, "--socket", sock, "-o", "json", "backup", file)
	mustOK(t, r)
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file holds %d bytes (%v), want the %d sent", len(got), err, len(data))
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}
	var sum backupSummary
	if err := json.Unmarshal([]byte(r.out), &sum); err != nil {
		t.Fatalf("%v: %s", err, r.out)
	}
	want := sha256.Sum256(data)
	if sum.File != file || sum.Size != uint64(len(data)) || sum.FactCount != 7 || sum.AuthorityID != strings.Repeat("a", 64) ||
		sum.SHA256 != hex.EncodeToString(want[:]) || sum.TakenAt != "2023-11-14T22:13:20Z" {
		t.Fatalf("summary %+v", sum)
	}
	// stderr is no terminal here: no progress bar.
	if r.err != "" {
		t.Fatalf("stderr %q", r.err)
	}

	// Table output, and FILE exists now: refused without --force.
	r = runCtl(t, nil, nil, "--socket", sock, "backup", file)
	if r.code != ExitAlreadyExists || !strings.Contains(r.err, "pass --force") {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	os.WriteFile(file, []byte("older"), 0o600)
	r = runCtl(t, nil, nil, "--socket", sock, "backup", "--force", file)
	mustOK(t, r)
	if !strings.Contains(r.out, "sha256:     "+hex.EncodeToString(want[:])) || !strings.Contains(r.out, "facts:      7 (last seq 7, schema 1)") {
		t.Fatalf("table:\n%s", r.out)
	}
	if got, _ := os.ReadFile(file); !bytes.Equal(got, data) {
		t.Fatal("--force did not replace the file")
	}
}

// Every broken stream leaves neither FILE nor FILE.tmp, exits with the code of
// what went wrong, and says so in one line.
func TestBackupFailuresLeaveNoFile(t *testing.T) {
	data := snapshotBytes(t)
	for _, tc := range []struct {
		name string
		node *backupNode
		args []string
		code int
		says string
	}{
		{"hash mismatch", &backupNode{data: data, badSum: true}, nil, ExitError, "SHA-256"},
		{"no trailer", &backupNode{data: data, noTrailer: true}, nil, ExitError, "without a trailer"},
		{"more than announced", &backupNode{data: data, overrun: true}, nil, ExitError, "more than the"},
		{"daemon stops mid-stream", &backupNode{data: data, failAt: 5000, failErr: status.Error(codes.Unavailable, "aurad is shutting down")}, nil, ExitUnavailable, "shutting down"},
		{"store damaged", &backupNode{data: data, failAt: 2000, failErr: status.Error(codes.DataLoss, "journal damaged")}, nil, ExitDataLoss, "journal damaged"},
		{"timeout", &backupNode{data: data, block: true}, []string{"--timeout", "200ms"}, ExitDeadlineExceeded, "within 200ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := serveBackup(t, tc.node)
			dir := shortTempDir(t)
			file := filepath.Join(dir, "b")
			r := runCtl(t, nil, nil, append(append([]string{"--socket", sock}, tc.args...), "backup", file)...)
			if r.code != tc.code || !strings.Contains(r.err, tc.says) || strings.Count(r.err, "\n") != 1 {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", r.code, tc.code, r.err, tc.says)
			}
			if !strings.Contains(r.err, "nothing written") {
				t.Errorf("stderr %q does not say nothing was written", r.err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("left %v", entries)
			}
		})
	}
}

func TestBackupRefusals(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "none.sock")
	file := filepath.Join(dir, "b")

	r := runCtl(t, nil, nil, "--socket", sock, "backup", file)
	if r.code != ExitUnavailable {
		t.Fatalf("no daemon: exit %d %q", r.code, r.err)
	}
	if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
		t.Fatal("temp file made with no daemon to back up")
	}
	sock = serveBackup(t, &backupNode{data: snapshotBytes(t)})
	// A FILE.tmp of someone else is never clobbered.
	os.WriteFile(file+".tmp", []byte("theirs"), 0o600)
	r = runCtl(t, nil, nil, "--socket", sock, "backup", file)
	if b, _ := os.ReadFile(file + ".tmp"); r.code != ExitAlreadyExists || string(b) != "theirs" {
		t.Fatalf("exit %d %q; tmp now %q", r.code, r.err, b)
	}
	os.Remove(file + ".tmp")
	// A directory is no backup file, --force or not.
	r = runCtl(t, nil, nil, "--socket", sock, "backup", "--force", dir)
	if r.code != ExitInvalidArgument {
		t.Fatalf("directory: exit %d %q", r.code, r.err)
	}
	for _, args := range [][]string{{"backup"}, {"backup", "a", "b"}} {
		if r := runCtl(t, nil, nil, append([]string{"--socket", sock}, args...)...); r.code != ExitUsage {
			t.Fatalf("%v: exit %d", args, r.code)
		}
	}
}
