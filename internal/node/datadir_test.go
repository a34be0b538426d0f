package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	"github.com/aura-p2p/aura/internal/journal"
)

func appendNotes(t *testing.T, sock string, n int) {
	t.Helper()
	c := journalv1.NewJournalServiceClient(dial(t, sock))
	for i := range n {
		if _, err := c.AppendFact(context.Background(), &journalv1.AppendFactRequest{
			TypeId: "app.note/v1", Payload: []byte(fmt.Sprintf("note %d %s", i, strings.Repeat("x", 200))),
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func status_(t *testing.T, sock string) *nodev1.GetStatusResponse {
	t.Helper()
	st, err := nodev1.NewNodeServiceClient(dial(t, sock)).GetStatus(context.Background(), &nodev1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A data dir that lost its journal is refused, never re-founded; founding
// again takes an explicit init.
func TestLostJournalIsRefusedNotRefounded(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	appendNotes(t, cfg.Socket, 3)
	auth := status_(t, cfg.Socket).GetAuthorityId()
	n.Stop()
	jpath := filepath.Join(cfg.DataDir, JournalFileName)
	ctx := context.Background()
	deps := Deps{Logger: zaptest.NewLogger(t), Notify: func(string) {}}

	if err := os.Rename(jpath, jpath+".away"); err != nil {
		t.Fatal(err)
	}
	_, err := Start(ctx, cfg, deps)
	if !errors.Is(err, ErrNoJournal) || !strings.Contains(err.Error(), "aurad restore") || !strings.Contains(err.Error(), "aurad init") {
		t.Fatalf("start without journal: %v", err)
	}
	if _, err := os.Stat(jpath); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused start created a journal")
	}

	for _, size := range []int64{0, 8192} {
		b, _ := os.ReadFile(jpath + ".away")
		if err := os.WriteFile(jpath, b[:size], 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = Start(ctx, cfg, deps)
		if !errors.Is(err, journal.ErrDamaged) || !strings.Contains(err.Error(), "aurad salvage") {
			t.Fatalf("start on a %d-byte journal: %v", size, err)
		}
		if fi, _ := os.Stat(jpath); fi.Size() != size {
			t.Fatalf("a refused start changed the journal to %d bytes", fi.Size())
		}
	}
	if _, err := Init(ctx, cfg, deps); !errors.Is(err, ErrInitialised) {
		t.Fatalf("init over a journal: %v", err)
	}

	// Putting the journal back restores the same account.
	if err := os.Rename(jpath+".away", jpath); err != nil {
		t.Fatal(err)
	}
	startNode(t, cfg).Stop()

	// The device key alone, without a journal: only init founds anew.
	os.Remove(jpath)
	rep, err := Init(ctx, cfg, deps)
	if err != nil || rep.KeysNew || rep.Authority.String() == auth {
		t.Fatalf("init with kept keys: %+v %v", rep, err)
	}
	startNode(t, cfg)
	if got := status_(t, cfg.Socket).GetAuthorityId(); got != rep.Authority.String() {
		t.Fatalf("after init: authority %s, want %s", got, rep.Authority)
	}
}

func TestJournalWithoutDeviceKeyIsRefused(t *testing.T) {
	cfg := testConfig(t)
	startNode(t, cfg).Stop()
	os.Remove(filepath.Join(cfg.DataDir, deviceKeyFile))
	_, err := Start(context.Background(), cfg, Deps{Notify: func(string) {}})
	if err == nil || !strings.Contains(err.Error(), "device.key is missing") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, deviceKeyFile)); err == nil {
		t.Fatal("a refused start made a new device key")
	}
}

// Every state file and the data dir must be owner-only, as the keys are.
func TestLooseModesAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode
		want string
	}{
		{"", 0o777, "chmod 700"},
		{"", 0o750, "chmod 700"},
		{JournalFileName, 0o644, "chmod 600"},
		{JournalFileName, 0o660, "chmod 600"},
		{hpkeKeyFile, 0o640, "chmod 600"},
		{lockFileName, 0o644, "chmod 600"},
	} {
		t.Run(fmt.Sprintf("%s %04o", tc.name, tc.mode), func(t *testing.T) {
			cfg := testConfig(t)
			startNode(t, cfg).Stop()
			path := filepath.Join(cfg.DataDir, tc.name)
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Start(context.Background(), cfg, Deps{Notify: func(string) {}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "owner only") {
				t.Fatalf("got %v", err)
			}
			if _, err := Check(context.Background(), cfg.DataDir, false, nil); err == nil {
				t.Fatal("check accepted the loose mode")
			}
		})
	}
	t.Run("token file", func(t *testing.T) {
		cfg := testConfig(t)
		cert, key, _ := writeTLS(t, cfg.DataDir)
		tokenFile := filepath.Join(cfg.DataDir, "token")
		os.WriteFile(tokenFile, []byte("0123456789abcdef0123"), 0o644)
		cfg.Control = ControlConfig{TCPListen: "127.0.0.1:0", TLSCertFile: cert, TLSKeyFile: key, TokenFile: tokenFile}
		if _, err := Start(context.Background(), cfg, Deps{Notify: func(string) {}}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("token at 0644: %v", err)
		}
		os.Chmod(tokenFile, 0o600)
		os.Chmod(key, 0o644)
		if _, err := Start(context.Background(), cfg, Deps{Notify: func(string) {}}); err == nil || !strings.Contains(err.Error(), "TLS key") {
			t.Fatalf("TLS key at 0644: %v", err)
		}
	})
}

// Damage met while the daemon runs: reads report data loss, writes are
// refused, health turns NOT_SERVING, and the daemon stays up to say so.
func TestDamageWhileRunningIsReportedNotServed(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	appendNotes(t, cfg.Socket, 300)
	conn := dial(t, cfg.Socket)
	jc := journalv1.NewJournalServiceClient(conn)

	// Zero every tree page under the running daemon (bbolt maps the file
	// shared, so it reads the damage at once); keep the meta pages.
	f, err := os.OpenFile(filepath.Join(cfg.DataDir, JournalFileName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if _, err := f.WriteAt(make([]byte, fi.Size()-8192), 8192); err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, err = jc.ListFacts(context.Background(), &journalv1.ListFactsRequest{})
	if status.Code(err) != codes.DataLoss {
		t.Fatalf("list on a damaged journal: %v, want DataLoss", err)
	}
	_, err = jc.AppendFact(context.Background(), &journalv1.AppendFactRequest{TypeId: "app.note/v1", Payload: []byte("after")})
	if status.Code(err) != codes.DataLoss || !strings.Contains(err.Error(), "aurad check") {
		t.Fatalf("append on a damaged journal: %v, want DataLoss naming aurad check", err)
	}
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health still %v, %v", r.GetStatus(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.Stop()
}

// Salvage of a damaged data dir gives a new one that starts as the same
// device and account, holding every fact that survived.
func TestSalvageStartsAsTheSameAccount(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	appendNotes(t, cfg.Socket, 400)
	before := status_(t, cfg.Socket)
	n.Stop()
	// Damage the tail of the file, then salvage.
	jpath := filepath.Join(cfg.DataDir, JournalFileName)
	fi, _ := os.Stat(jpath)
	f, _ := os.OpenFile(jpath, os.O_RDWR, 0)
	f.WriteAt(make([]byte, 4*4096), fi.Size()/2)
	f.Close()

	to := testConfig(t)
	rep, err := Salvage(context.Background(), to, cfg.DataDir, Deps{Logger: zaptest.NewLogger(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Authority.String() != before.GetAuthorityId() || len(rep.KeysCopied) != 2 || rep.FactsRecovered == 0 {
		t.Fatalf("salvage: %+v", rep)
	}
	startNode(t, to)
	after := status_(t, to.Socket)
	if after.GetAuthorityId() != before.GetAuthorityId() || after.GetDeviceId() != before.GetDeviceId() {
		t.Fatalf("salvaged node is %s/%s, was %s/%s", after.GetDeviceId(), after.GetAuthorityId(), before.GetDeviceId(), before.GetAuthorityId())
	}
	if after.GetJournal().GetFactCount() != rep.FactsRecovered || rep.FactsRecovered > before.GetJournal().GetFactCount() {
		t.Fatalf("salvaged node holds %d facts, report %d, original %d", after.GetJournal().GetFactCount(), rep.FactsRecovered, before.GetJournal().GetFactCount())
	}
	// The damaged dir is untouched, and salvaging into a dir with a journal is refused.
	if _, err := Salvage(context.Background(), cfg, to.DataDir, Deps{}, nil); err == nil {
		t.Fatal("salvage into the damaged dir itself accepted")
	}
}
