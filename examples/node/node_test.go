// Package nodeexample tests the Node.js client in this directory against a
// real aurad: the example is only worth showing if it keeps working.
package nodeexample

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hangGuard bounds every wait on another process, so that a broken daemon or
// client fails the test instead of hanging it. It is not a performance bound.
const hangGuard = 2 * time.Minute

// tool finds a program the example needs. Without it the test is skipped on
// a developer's machine but fails in CI, which must always run the example.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not on PATH but $CI is set: CI must install Node.js and npm (see .ci/run) so the Node example runs", name)
	}
	t.Skipf("%s is not on PATH; install Node.js to run the Node example", name)
	return ""
}

// run runs cmd to completion within hangGuard and returns its exit code.
func run(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(hangGuard):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s still running after %s", strings.Join(cmd.Args, " "), hangGuard)
		return -1
	}
}

// exampleDir returns a directory holding main.js with its packages installed:
// this one if node_modules is already there, else a temporary copy in which
// npm installs the pinned packages (so a test run leaves the tree as it was).
func exampleDir(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("node_modules"); err == nil {
		abs, err := filepath.Abs(".")
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	npm := tool(t, "npm")
	dir := t.TempDir()
	for _, f := range []string{"main.js", "package.json", "package-lock.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &out
	if code := run(t, cmd); code != 0 {
		t.Fatalf("npm ci exited %d:\n%s", code, out.String())
	}
	return dir
}

// daemon is one aurad process on its own data dir.
type daemon struct {
	cmd *exec.Cmd
	log syncBuffer
	// done closes once the process has exited, with waitErr set.
	done    chan struct{}
	waitErr error
	ready   struct {
		PID      int    `json:"pid"`
		Socket   string `json:"socket"`
		DeviceID string `json:"device_id"`
	}
}

func buildAurad(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "aurad")
	var out bytes.Buffer
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/aurad")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, &out, &out
	if code := run(t, cmd); code != 0 {
		t.Fatalf("go build ./cmd/aurad exited %d:\n%s", code, out.String())
	}
	return bin
}

// startDaemon runs aurad and returns once its ready.json names the process.
func startDaemon(t *testing.T, bin string) *daemon {
	t.Helper()
	// A short path: a unix socket's path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "auranode")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &daemon{done: make(chan struct{})}
	d.cmd = exec.Command(bin, "--datadir", dir)
	d.cmd.Stdout, d.cmd.Stderr = &d.log, &d.log
	d.cmd.Env = append(os.Environ(), "HOME="+dir)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	deadline := time.Now().Add(hangGuard)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "ready.json")); err == nil && json.Unmarshal(b, &d.ready) == nil && d.ready.PID == d.cmd.Process.Pid {
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("aurad exited during start: %v\n%s", d.waitErr, d.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("aurad not ready after %s:\n%s", hangGuard, d.log.String())
		}
	}
}

// stop sends SIGTERM and wants a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
		if d.waitErr != nil {
			t.Fatalf("aurad after SIGTERM: %v\n%s", d.waitErr, d.log.String())
		}
	case <-time.After(hangGuard):
		t.Fatalf("aurad still running %s after SIGTERM:\n%s", hangGuard, d.log.String())
	}
}

// syncBuffer is the daemon's log, written by exec while a failing test may
// read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// field returns the words after prefix on the first line that starts with it.
func field(out, prefix string) []string {
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}

func TestNodeClientAgainstRealDaemon(t *testing.T) {
	node := tool(t, "node")
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := exampleDir(t)
	d := startDaemon(t, buildAurad(t, root))
	nonce := make([]byte, 4)
	_, _ = rand.Read(nonce)
	payload := "hello from the node example " + hex.EncodeToString(nonce)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		check    func(t *testing.T, stdout, stderr string)
	}{
		{
			name: "status, append, watch", args: []string{"--socket", d.ready.Socket, payload}, wantCode: 0,
			check: func(t *testing.T, stdout, _ string) {
				if dev := field(stdout, "status: device "); len(dev) != 1 || dev[0] != d.ready.DeviceID {
					t.Fatalf("status names device %v, daemon is %s", dev, d.ready.DeviceID)
				}
				appended := field(stdout, "appended: ")
				if len(appended) == 0 || len(appended[0]) != 64 {
					t.Fatalf("no fact id printed for the append")
				}
				seen := field(stdout, "seen: ")
				if len(seen) != 1 || seen[0] != appended[0] {
					t.Fatalf("watched fact %v, appended %s", seen, appended[0])
				}
				watched := field(stdout, "watched: "+appended[0]+" ")
				if !strings.Contains(strings.Join(watched, " "), fmt.Sprintf("%q", payload)) {
					t.Fatalf("watched line %v lacks the payload %q", watched, payload)
				}
			},
		},
		{
			name: "no daemon on the socket", args: []string{"--socket", filepath.Join(t.TempDir(), "none.sock")}, wantCode: 1,
			check: func(t *testing.T, stdout, stderr string) {
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: no daemon answers at ") {
					t.Fatalf("want one error line, got %q", stderr)
				}
				if stdout != "" {
					t.Fatalf("output on failure: %q", stdout)
				}
			},
		},
		{
			name: "bad flag", args: []string{"--timeout", "soon"}, wantCode: 2,
			check: func(t *testing.T, _, stderr string) {
				if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "error: --timeout soon") {
					t.Fatalf("want one error line, got %q", stderr)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(node, append([]string{"main.js", "--timeout", "60"}, tc.args...)...)
			cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
			cmd.Env = append(os.Environ(), "AURA_PROTO_DIR="+filepath.Join(root, "api", "proto"))
			if code := run(t, cmd); code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			tc.check(t, stdout.String(), stderr.String())
		})
	}
	d.stop(t)
}
