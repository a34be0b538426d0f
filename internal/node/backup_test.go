package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"

	budgetv1 "github.com/aura-p2p/aura/api/proto/aura/budget/v1"
	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	peerv1 "github.com/aura-p2p/aura/api/proto/aura/peer/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// backupViaRPC runs NodeService.Backup into path as a client would: header
// first, chunks, then a trailer whose SHA-256 must match what arrived.
func backupViaRPC(ctx context.Context, conn *grpc.ClientConn, path string, afterHeader func()) (*nodev1.BackupHeader, error) {
	s, err := nodev1.NewNodeServiceClient(conn).Backup(ctx, &nodev1.BackupRequest{})
	if err != nil {
		return nil, err
	}
	m, err := s.Recv()
	if err != nil {
		return nil, err
	}
	h := m.GetHeader()
	if h == nil {
		return nil, fmt.Errorf("stream began with %T", m.GetPart())
	}
	if afterHeader != nil {
		afterHeader()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sum := sha256.New()
	var n uint64
	for {
		m, err := s.Recv()
		if err != nil {
			return nil, fmt.Errorf("after %d bytes: %w", n, err)
		}
		if c := m.GetChunk(); c != nil {
			f.Write(c)
			sum.Write(c)
			n += uint64(len(c))
			continue
		}
		tr := m.GetTrailer()
		if tr == nil {
			return nil, fmt.Errorf("unexpected %T", m.GetPart())
		}
		if n != h.GetSize() || !bytes.Equal(tr.GetSha256(), sum.Sum(nil)) {
			return nil, fmt.Errorf("got %d of %d bytes, sha256 mismatch", n, h.GetSize())
		}
		if _, err := s.Recv(); err != io.EOF {
			return nil, fmt.Errorf("stream after trailer: %v", err)
		}
		return h, f.Sync()
	}
}

// otherDeviceAddr is a multiaddr of a made-up device, for peer lists.
func otherDeviceAddr(t *testing.T, port int) (string, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &Keys{Device: priv}
	pid, err := peerIDOf(k)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, pid), k.DeviceID().String()
}

func copyKeys(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{deviceKeyFile, hpkeKeyFile} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// allFacts pages through the journal in commit order.
func allFacts(t *testing.T, ctx context.Context, conn *grpc.ClientConn) []*journalv1.Fact {
	t.Helper()
	var out []*journalv1.Fact
	req := &journalv1.ListFactsRequest{PageSize: 1000}
	for {
		resp, err := journalv1.NewJournalServiceClient(conn).ListFacts(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetFacts()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

type peerView struct {
	device string
	addrs  string
	known  bool
}

func peersOf(t *testing.T, ctx context.Context, conn *grpc.ClientConn) []peerView {
	t.Helper()
	resp, err := peerv1.NewPeerServiceClient(conn).ListPeers(ctx, &peerv1.ListPeersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []peerView
	for _, p := range resp.GetPeers() {
		out = append(out, peerView{p.GetDeviceId(), strings.Join(p.GetAddrs(), " "), p.GetKnown()})
	}
	slices.SortFunc(out, func(a, b peerView) int { return strings.Compare(a.device, b.device) })
	return out
}

// budgetsOf lists budgets without their epoch, which the wall clock turns.
func budgetsOf(t *testing.T, ctx context.Context, conn *grpc.ClientConn) []string {
	t.Helper()
	resp, err := budgetv1.NewBudgetServiceClient(conn).ListBudgets(ctx, &budgetv1.ListBudgetsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range resp.GetBudgets() {
		out = append(out, fmt.Sprintf("%s %s %s limit=%d spent=%d", b.GetContext(), b.GetPeer(), b.GetClass(), b.GetLimit(), b.GetSpent()))
	}
	slices.Sort(out)
	return out
}

// dirState lists a data dir's files with their sizes and contents' hashes,
// leaving out the lock file, which a daemon start creates as well.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == lockFileName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprintf("%x", sha256.Sum256(b))
	}
	return out
}

func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "aura")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// The finding's end-to-end case: facts, a peer and a budget limit, a backup
// over gRPC while clients keep appending, a restore into a new data dir holding
// the device's keys, and a daemon started on it that has the same authority,
// facts up to the backup's last seq, budgets and peers.
func TestBackupUnderAppendsThenRestoreIsTheSameDevice(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	n := startNode(t, cfg)
	conn := dial(t, cfg.Socket)
	js := journalv1.NewJournalServiceClient(conn)
	for i := range 300 {
		if _, err := js.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.note/v1", Payload: fmt.Appendf(nil, "note %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	peerAddr, peerDevice := otherDeviceAddr(t, 4001)
	if _, err := peerv1.NewPeerServiceClient(conn).AddPeer(ctx, &peerv1.AddPeerRequest{Addr: peerAddr}); err != nil {
		t.Fatal(err)
	}
	if _, err := budgetv1.NewBudgetServiceClient(conn).SetLimit(ctx, &budgetv1.SetLimitRequest{Peer: peerDevice, Limit: 77}); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var (
		wg       sync.WaitGroup
		acked    atomic.Int64
		firstErr atomic.Pointer[error]
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := js.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.load/v1", Payload: fmt.Appendf(nil, "%d/%d", w, i)})
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				acked.Add(1)
			}
		})
	}
	// Let the appenders get going before the snapshot is taken.
	for acked.Load() < 50 {
		if e := firstErr.Load(); e != nil {
			t.Fatal(*e)
		}
		runtime.Gosched()
	}
	backup := filepath.Join(shortDir(t), "aura.backup")
	var atHeader int64
	h, err := backupViaRPC(ctx, conn, backup, func() { atHeader = acked.Load() })
	duringBackup := acked.Load() - atHeader
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if e := firstErr.Load(); e != nil {
		t.Fatalf("append during the backup: %v", *e)
	}
	t.Logf("backup of %d bytes, last seq %d; %d appends acknowledged while it streamed", h.GetSize(), h.GetLastSeq(), duringBackup)
	if fi, err := os.Stat(backup); err != nil || fi.Size() != int64(h.GetSize()) {
		t.Fatalf("backup file: %v %v", fi, err)
	}

	st, err := nodev1.NewNodeServiceClient(conn).GetStatus(ctx, &nodev1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if h.GetAuthorityId() != st.GetAuthorityId() || h.GetDeviceId() != st.GetDeviceId() || h.GetSchemaVersion() != journal.SchemaVersion {
		t.Fatalf("header %v vs status %v", h, st)
	}
	if st.GetJournal().GetLastSeq() <= h.GetLastSeq() {
		t.Fatalf("live last seq %d, backup %d: the appends did not outlast the snapshot", st.GetJournal().GetLastSeq(), h.GetLastSeq())
	}
	var wantFacts []*journalv1.Fact
	for _, f := range allFacts(t, ctx, conn) {
		if f.GetSeq() <= h.GetLastSeq() {
			wantFacts = append(wantFacts, f)
		}
	}
	wantPeers, wantBudgets := peersOf(t, ctx, conn), budgetsOf(t, ctx, conn)
	// The limit an operator sets shows only as the budget's presence until
	// traffic gives the key a class (the effective limit is the meet with
	// the class's); its presence after the restore is what survived.
	if len(wantPeers) != 1 || wantPeers[0].device != peerDevice || !slices.ContainsFunc(wantBudgets, func(s string) bool {
		return strings.Contains(s, peerDevice)
	}) {
		t.Fatalf("fixture: peers %v budgets %v", wantPeers, wantBudgets)
	}
	n.Stop()

	cfg2 := testConfig(t)
	copyKeys(t, cfg.DataDir, cfg2.DataDir)
	rep, err := Restore(ctx, cfg2.DataDir, backup, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if rep.Authority.String() != st.GetAuthorityId() || rep.Device.String() != st.GetDeviceId() || !rep.HasDeviceKey ||
		rep.Facts != h.GetFactCount() || rep.LastSeq != h.GetLastSeq() || rep.Size != int64(h.GetSize()) {
		t.Fatalf("report %+v vs header %v", rep, h)
	}
	if fi, err := os.Stat(filepath.Join(cfg2.DataDir, "journal.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored journal: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(cfg2.DataDir, "journal.db.restore")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("working copy left behind: %v", err)
	}

	startNode(t, cfg2)
	conn2 := dial(t, cfg2.Socket)
	st2, err := nodev1.NewNodeServiceClient(conn2).GetStatus(ctx, &nodev1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st2.GetAuthorityId() != st.GetAuthorityId() || st2.GetDeviceId() != st.GetDeviceId() || st2.GetJournal().GetLastSeq() != h.GetLastSeq() {
		t.Fatalf("restored status %v, backup header %v", st2, h)
	}
	gotFacts := allFacts(t, ctx, conn2)
	if len(gotFacts) != len(wantFacts) || uint64(len(gotFacts)) != h.GetFactCount() {
		t.Fatalf("restored %d facts, want %d (header %d)", len(gotFacts), len(wantFacts), h.GetFactCount())
	}
	for i := range gotFacts {
		g, w := gotFacts[i], wantFacts[i]
		if g.GetId() != w.GetId() || g.GetSeq() != w.GetSeq() || !bytes.Equal(g.GetPayload(), w.GetPayload()) || !bytes.Equal(g.GetSignature(), w.GetSignature()) {
			t.Fatalf("fact %d: restored %v, want %v", i, g, w)
		}
	}
	if got := peersOf(t, ctx, conn2); !slices.Equal(got, wantPeers) {
		t.Fatalf("peers %v, want %v", got, wantPeers)
	}
	if got := budgetsOf(t, ctx, conn2); !slices.Equal(got, wantBudgets) {
		t.Fatalf("budgets %v, want %v", got, wantBudgets)
	}
	// The restored device writes to its own authority again.
	if _, err := journalv1.NewJournalServiceClient(conn2).AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.note/v1", Payload: []byte("after restore")}); err != nil {
		t.Fatalf("append after restore: %v", err)
	}
}

// backupOfNewNode starts a node on a fresh data dir, backs it up in-process
// and stops it; it returns the data dir and the backup's path.
func backupOfNewNode(t *testing.T) (dataDir, backup string) {
	t.Helper()
	cfg := testConfig(t)
	n := startNode(t, cfg)
	backup = filepath.Join(shortDir(t), "b.db")
	f, err := os.OpenFile(backup, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Backup(context.Background(), f, func(journal.SnapshotInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	return cfg.DataDir, backup
}

func TestRestoreRefusesBadInputAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	devA, backupA := backupOfNewNode(t)
	devB, _ := backupOfNewNode(t)
	raw, err := os.ReadFile(backupA)
	if err != nil {
		t.Fatal(err)
	}
	writeFile := func(b []byte) string {
		p := filepath.Join(shortDir(t), "f")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := make([]byte, 64<<10)
	rand.Read(garbage)
	withKeysOf := func(src string) func(t *testing.T) string {
		return func(t *testing.T) string {
			d := filepath.Join(shortDir(t), "data")
			copyKeys(t, src, d)
			return d
		}
	}
	for _, tc := range []struct {
		name    string
		dataDir func(t *testing.T) string
		from    string
		want    error
		says    []string
	}{
		{"data dir holds a journal", func(*testing.T) string { return devA }, backupA, ErrJournalExists, []string{"journal.db exists", "never replaces a journal in place"}},
		{"truncated backup", withKeysOf(devA), writeFile(raw[:len(raw)/2]), journal.ErrDamaged, []string{"failed its check"}},
		{"garbage", withKeysOf(devA), writeFile(garbage), journal.ErrDamaged, []string{"failed its check"}},
		{"empty file", withKeysOf(devA), writeFile(nil), core.ErrInvalidArgument, []string{"is empty"}},
		{"missing file", withKeysOf(devA), filepath.Join(devA, "no-such-backup"), os.ErrNotExist, []string{"no-such-backup"}},
		{"another device's backup", withKeysOf(devB), backupA, ErrForeignBackup, []string{"is not a member of authority"}},
		{"data dir others can read", func(t *testing.T) string {
			d := withKeysOf(devA)(t)
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
			return d
		}, backupA, core.ErrFailedPrecondition, []string{"chmod 700"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dataDir(t)
			before := dirState(t, dir)
			_, err := Restore(ctx, dir, tc.from, zaptest.NewLogger(t))
			if err == nil {
				t.Fatal("restore accepted it")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if after := dirState(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("data dir changed: %v -> %v", before, after)
			}
		})
	}
	t.Run("foreign refusal names both devices", func(t *testing.T) {
		dir := withKeysOf(devB)(t)
		_, err := Restore(ctx, dir, backupA, zaptest.NewLogger(t))
		a, _, _ := dataDirDevice(devA)
		b, _, _ := dataDirDevice(devB)
		if err == nil || !strings.Contains(err.Error(), a.String()) || !strings.Contains(err.Error(), b.String()) {
			t.Fatalf("%v should name %s and %s", err, a, b)
		}
	})
	t.Run("a running daemon's lock", func(t *testing.T) {
		dir := withKeysOf(devA)(t)
		l, err := lockDataDir(dir, "/some/socket")
		if err != nil {
			t.Fatal(err)
		}
		defer l.release()
		before := dirState(t, dir)
		if _, err := Restore(ctx, dir, backupA, zaptest.NewLogger(t)); !errors.Is(err, ErrAlreadyRunning) {
			t.Fatalf("got %v", err)
		}
		if after := dirState(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("data dir changed: %v -> %v", before, after)
		}
	})
	t.Run("a new data dir is left out entirely", func(t *testing.T) {
		dir := filepath.Join(shortDir(t), "new")
		if _, err := Restore(ctx, dir, writeFile(garbage), zaptest.NewLogger(t)); !errors.Is(err, journal.ErrDamaged) {
			t.Fatalf("got %v", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("refused restore left the new data dir: %v", err)
		}
	})
}

// Restoring into an empty (even absent) data dir is allowed; the report says
// it holds no device key yet. A second restore into it is refused.
func TestRestoreIntoEmptyDataDir(t *testing.T) {
	ctx := context.Background()
	devA, backupA := backupOfNewNode(t)
	dir := filepath.Join(shortDir(t), "fresh")
	rep, err := Restore(ctx, dir, backupA, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := dataDirDevice(devA)
	if rep.HasDeviceKey || len(rep.Members) != 1 || rep.Members[0] != a || rep.Facts != 1 {
		t.Fatalf("report %+v", rep)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v", fi, err)
	}
	if _, err := Restore(ctx, dir, backupA, zaptest.NewLogger(t)); !errors.Is(err, ErrJournalExists) {
		t.Fatalf("second restore: %v", err)
	}
	// With the keys copied in, the daemon starts as device A.
	copyKeys(t, devA, dir)
	cfg := testConfig(t)
	cfg.DataDir, cfg.Socket = dir, filepath.Join(dir, "aurad.sock")
	startNode(t, cfg)
	st, err := nodev1.NewNodeServiceClient(dial(t, cfg.Socket)).GetStatus(ctx, &nodev1.GetStatusRequest{})
	if err != nil || st.GetDeviceId() != a.String() || st.GetAuthorityId() != rep.Authority.String() {
		t.Fatalf("status %v %v", st, err)
	}
}
