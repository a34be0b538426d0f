package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/node"
)

// Ctl runs auractl against the daemon of dir and returns its output (stdout,
// then stderr) and exit code. A failing auractl must say why in one line.
func Ctl(t testing.TB, dir string, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(Auractl(t), append([]string{"--datadir", dir}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if lines := strings.Count(strings.TrimSpace(errb.String()), "\n"); lines > 0 {
			t.Errorf("auractl %v wrote %d lines to stderr, want one: %q", args, lines+1, errb.String())
		}
		return out.String() + errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

// CtlJSON runs auractl -o json and decodes its output into v; any failure
// fails the test. Decode into a fresh value each time: proto3 JSON omits zero
// fields, so a reused value keeps the previous call's figures.
func CtlJSON(t testing.TB, dir string, v any, args ...string) {
	t.Helper()
	out, code := Ctl(t, dir, append([]string{"-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("auractl %v: exit %d: %s", args, code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("auractl %v: %v in %q", args, err, out)
	}
}

// hangGuard bounds every wait on a daemon, so a hung daemon fails the test
// instead of stalling the suite; no test asserts on it.
const hangGuard = time.Minute

// readReady reads dir's ready.json if it is there and whole.
func readReady(dir string) (node.ReadyInfo, bool) {
	b, err := os.ReadFile(filepath.Join(dir, node.ReadyFileName))
	if err != nil {
		return node.ReadyInfo{}, false
	}
	var r node.ReadyInfo
	if json.Unmarshal(b, &r) != nil || len(r.ListenAddrs) == 0 {
		return node.ReadyInfo{}, false
	}
	return r, true
}

// NewDataDir is an empty data dir removed when the test ends. It is short,
// so the control socket's path stays inside the unix limit.
func NewDataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "aurac")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// logProblems fails t if a daemon's log shows an error (a bug in aurad,
// never bad input) or a data race.
func logProblems(t testing.TB, who, log string) {
	if strings.Contains(log, "\tERROR\t") || strings.Contains(log, "DATA RACE") {
		t.Errorf("%s logged an error or a race:\n%s", who, log)
	}
}
