package noderpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc"
)

// fakeDaemon's Backup announces info and writes data in writes of step bytes;
// with failErr set it fails once failAt bytes are written.
type fakeDaemon struct {
	info       journal.SnapshotInfo
	data       []byte
	step       int
	openErr    error // returned before begin, as a closed journal would
	failAt     int   // with failErr: fail once this many bytes are written
	failErr    error
	seenCtxErr error
}

func (f *fakeDaemon) Stats(context.Context) (journal.Stats, error) { return journal.Stats{}, nil }
func (f *fakeDaemon) Network() Network                             { return Network{} }
func (f *fakeDaemon) RequestShutdown()                             {}
func (f *fakeDaemon) SetLogLevel(string) (string, error)           { return "info", nil }

func (f *fakeDaemon) Backup(ctx context.Context, w io.Writer, begin func(journal.SnapshotInfo) error) (int64, error) {
	if f.openErr != nil {
		return 0, f.openErr
	}
	if err := begin(f.info); err != nil {
		return 0, err
	}
	var n int64
	for off := 0; off < len(f.data); off += f.step {
		if f.failErr != nil && off >= f.failAt {
			return n, f.failErr
		}
		if err := ctx.Err(); err != nil {
			f.seenCtxErr = err
			return n, err
		}
		k, err := w.Write(f.data[off:min(off+f.step, len(f.data))])
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// fakeStream collects what the adapter sends; cancelAfter > 0 cancels the
// call's context after that many chunks, as a client hanging up would.
type fakeStream struct {
	grpc.ServerStream
	ctx         context.Context
	cancel      context.CancelFunc
	cancelAfter int
	sendErr     error
	sent        []*nodev1.BackupResponse
	chunks      int
}

func (s *fakeStream) Context() context.Context { return s.ctx }

func (s *fakeStream) Send(m *nodev1.BackupResponse) error {
	if s.sendErr != nil {
		return s.sendErr
	}
	s.sent = append(s.sent, m)
	if m.GetChunk() != nil {
		s.chunks++
		if s.cancelAfter > 0 && s.chunks == s.cancelAfter {
			s.cancel()
		}
	}
	return nil
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func testIdentity() Identity {
	return Identity{Device: core.DeviceID{7}, Authority: core.AuthorityID{9}}
}

func TestBackupStreamsHeaderChunksAndTrailer(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		step int
	}{
		{"empty", 0, 1},
		{"smaller than a chunk", 1000, 300},
		{"exactly two chunks", 2 * BackupChunkSize, 4096},
		{"uneven, bbolt-sized writes", 2*BackupChunkSize + 12345, 32 << 10},
		{"one write larger than a chunk", BackupChunkSize*3 + 1, BackupChunkSize*3 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(t, tc.size)
			d := &fakeDaemon{
				info: journal.SnapshotInfo{Size: int64(tc.size), SchemaVersion: 1, Facts: 42, LastSeq: 41},
				data: data, step: tc.step,
			}
			clock := core.NewManualClock(time.UnixMilli(1_700_000_000_000))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st := &fakeStream{ctx: ctx, cancel: cancel}
			if err := New(testIdentity(), d, clock).Backup(&nodev1.BackupRequest{}, st); err != nil {
				t.Fatal(err)
			}
			if len(st.sent) < 2 {
				t.Fatalf("sent %d messages", len(st.sent))
			}
			h := st.sent[0].GetHeader()
			if h == nil || h.GetSize() != uint64(tc.size) || h.GetFactCount() != 42 || h.GetLastSeq() != 41 ||
				h.GetSchemaVersion() != 1 || h.GetAuthorityId() != (core.AuthorityID{9}).String() ||
				h.GetDeviceId() != (core.DeviceID{7}).String() || !h.GetTakenAt().AsTime().Equal(clock.Now()) {
				t.Fatalf("header %v", st.sent[0])
			}
			var got []byte
			for _, m := range st.sent[1 : len(st.sent)-1] {
				c := m.GetChunk()
				if c == nil || len(c) == 0 || len(c) > BackupChunkSize {
					t.Fatalf("middle message %T of %d bytes", m.GetPart(), len(c))
				}
				got = append(got, c...)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("chunks carry %d bytes, want the %d written", len(got), len(data))
			}
			want := sha256.Sum256(data)
			if tr := st.sent[len(st.sent)-1].GetTrailer(); tr == nil || !bytes.Equal(tr.GetSha256(), want[:]) {
				t.Fatalf("trailer %v", st.sent[len(st.sent)-1])
			}
		})
	}
}

// Failures map to the codes clients branch on, and no failed backup ends with
// a trailer: a client that saw none knows the file is incomplete.
func TestBackupFailureCodes(t *testing.T) {
	data := make([]byte, 3*BackupChunkSize)
	info := journal.SnapshotInfo{Size: int64(len(data))}
	for _, tc := range []struct {
		name        string
		d           *fakeDaemon
		cancelAfter int
		sendErr     error
		want        codes.Code
	}{
		{"journal closed (daemon stopping)", &fakeDaemon{openErr: journal.ErrClosed}, 0, nil, codes.Unavailable},
		{"store read fails mid-copy", &fakeDaemon{info: info, data: data, step: 32 << 10, failAt: BackupChunkSize + 1,
			failErr: fmt.Errorf("read journal for backup: input/output error: %w", core.ErrInternal)}, 0, nil, codes.Internal},
		{"store damaged", &fakeDaemon{info: info, data: data, step: 32 << 10, failAt: 64 << 10, failErr: journal.ErrCorrupt}, 0, nil, codes.DataLoss},
		{"snapshot shorter than announced", &fakeDaemon{info: journal.SnapshotInfo{Size: int64(len(data)) + 1}, data: data, step: 32 << 10}, 0, nil, codes.Internal},
		{"client cancels mid-stream", &fakeDaemon{info: info, data: data, step: 32 << 10}, 1, nil, codes.Canceled},
		{"send fails", &fakeDaemon{info: info, data: data, step: 32 << 10}, 0, errors.New("transport closed"), codes.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st := &fakeStream{ctx: ctx, cancel: cancel, cancelAfter: tc.cancelAfter, sendErr: tc.sendErr}
			err := New(testIdentity(), tc.d, core.SystemClock{}).Backup(&nodev1.BackupRequest{}, st)
			s, _ := rpc.ToStatus(err)
			if err == nil || s.Code() != tc.want {
				t.Fatalf("got %v (%v), want %v", s.Code(), err, tc.want)
			}
			for _, m := range st.sent {
				if m.GetTrailer() != nil {
					t.Fatal("a failed backup sent a trailer")
				}
			}
			if tc.cancelAfter > 0 && !errors.Is(tc.d.seenCtxErr, context.Canceled) {
				t.Fatalf("the copy did not see the cancel: %v", tc.d.seenCtxErr)
			}
		})
	}
}

// Through the real server chain: the method is registered, has a permission
// entry of admin, and a refused backup arrives as its code.
func TestBackupOverTheServerChain(t *testing.T) {
	perms, err := rpc.Merge(rpc.StandardPermissions(), Permissions())
	if err != nil {
		t.Fatal(err)
	}
	if perms[nodev1.NodeService_Backup_FullMethodName] != rpc.Admin {
		t.Fatalf("Backup needs %v, want admin", perms[nodev1.NodeService_Backup_FullMethodName])
	}
	srv := grpc.NewServer(rpc.ServerOptions(rpc.Options{Logger: zaptest.NewLogger(t), Gate: rpc.NewGate(), Permissions: perms})...)
	New(testIdentity(), &fakeDaemon{openErr: journal.ErrClosed}, core.SystemClock{}).Register(srv)
	// Only NodeService is registered here; drop the standard entries.
	for m := range rpc.StandardPermissions() {
		delete(perms, m)
	}
	if err := rpc.CheckPermissions(srv, perms); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "nrpc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	lis, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("unix://"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := nodev1.NewNodeServiceClient(conn).Backup(context.Background(), &nodev1.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if s, _ := rpc.ToStatus(err); s.Code() != codes.Unavailable {
		t.Fatalf("got %v", err)
	}
}
