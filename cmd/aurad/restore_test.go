package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/node"
)

func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "aurad")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// backupOfNewNode runs a node on a fresh data dir just long enough to back
// it up, and returns the backup's path and the node's status.
func backupOfNewNode(t *testing.T) (string, string) {
	t.Helper()
	dir := shortTempDir(t)
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Socket = filepath.Join(dir, "data"), filepath.Join(dir, "s.sock")
	n, err := node.Start(context.Background(), cfg, node.Deps{Logger: zaptest.NewLogger(t), Notify: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	path := filepath.Join(dir, "backup.db")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := n.Backup(context.Background(), f, func(journal.SnapshotInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return path, cfg.DataDir
}

func runAurad(env map[string]string, args ...string) (stdout, stderr string, code int) {
	var out, errw bytes.Buffer
	code = execute(args, &out, &errw, func(k string) string { return env[k] })
	return out.String(), errw.String(), code
}

func TestRestoreCommand(t *testing.T) {
	backup, _ := backupOfNewNode(t)
	target := filepath.Join(shortTempDir(t), "restored")

	out, errOut, code := runAurad(nil, "restore", "--from", backup, "--datadir", target)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"restored " + backup, "into:       " + filepath.Join(target, "journal.db"), "facts:      1 (last seq 1", "device:     none yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(target, "journal.db")); err != nil {
		t.Fatal(err)
	}

	// Again, now through $AURA_DATADIR: the journal is there, so it is refused
	// with one line saying why, and the journal is untouched.
	before, err := os.ReadFile(filepath.Join(target, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runAurad(map[string]string{core.EnvDataDir: target}, "restore", "--from", backup)
	if code != exitFailed || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "aurad: ") || !strings.Contains(last, "never replaces a journal in place") {
		t.Fatalf("last stderr line %q", last)
	}
	after, _ := os.ReadFile(filepath.Join(target, "journal.db"))
	if !bytes.Equal(before, after) {
		t.Fatal("a refused restore changed the journal")
	}
}

func TestRestoreCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"restore"},
		{"restore", "--from"},
		{"restore", "--from", "x", "extra"},
		{"restore", "--from", "x", "--bogus"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, errOut, code := runAurad(nil, args...)
			if code != exitUsage || !strings.HasPrefix(errOut, "aurad: ") || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
		})
	}
}
