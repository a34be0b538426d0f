// Package durability checks, on real aurad processes run under strace, that
// nothing is acknowledged before the fsync that makes it durable: a gRPC
// append is answered only after the journal transaction holding it was
// synced, and a flow-budget charge is synced before its envelope frame is
// written to the peer. A kill -9 test cannot see a missing fsync (the page
// cache survives the process), a syscall trace can.
//
// The tests need strace (Debian package strace) and ptrace. Without them they
// skip, except under CI (CI set), where they fail.
package durability

import (
	"bytes"
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

// traced are the syscalls the checks read: everything that can write a
// journal page or a socket, and the two that make a file durable.
const traced = "write,pwrite64,writev,pwritev,pwritev2,sendmsg,sendto,fsync,fdatasync"

// hangGuard bounds waits on processes, so a hung daemon fails the test
// instead of stalling it; it is never the thing a test asserts on.
const hangGuard = time.Minute

var bins struct {
	once                sync.Once
	err                 error
	dir, aurad, auractl string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// needStrace skips the test when strace cannot run here, or fails it under CI.
func needStrace(t *testing.T) string {
	t.Helper()
	unusable := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s: CI must provide it (apt-get install strace; ptrace must be allowed)", why)
		}
		t.Skipf("%s: apt-get install strace to run the durability tests", why)
	}
	path, err := exec.LookPath("strace")
	if err != nil {
		unusable("strace is not installed")
	}
	if out, err := exec.Command(path, "-f", "-o", os.DevNull, "true").CombinedOutput(); err != nil {
		unusable(fmt.Sprintf("strace cannot trace here (%v: %s)", err, bytes.TrimSpace(out)))
	}
	return path
}

// build compiles aurad and auractl once per run, only for tests that got past
// needStrace. aurad is built with the race detector, as in test/e2e.
func build(t *testing.T) {
	t.Helper()
	bins.once.Do(func() {
		dir, err := os.MkdirTemp("", "auradur")
		if err != nil {
			bins.err = err
			return
		}
		bins.dir = dir
		bins.aurad = filepath.Join(dir, "aurad")
		bins.auractl = filepath.Join(dir, "auractl")
		for _, b := range [][]string{
			{"build", "-race", "-o", bins.aurad, "github.com/aura-p2p/aura/cmd/aurad"},
			{"build", "-o", bins.auractl, "github.com/aura-p2p/aura/cmd/auractl"},
		} {
			out, err := exec.Command("go", b...).CombinedOutput()
			if err != nil {
				bins.err = fmt.Errorf("go %s: %w\n%s", strings.Join(b, " "), err, out)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
}

type ready struct {
	Socket      string   `json:"socket"`
	DeviceID    string   `json:"device_id"`
	ListenAddrs []string `json:"listen_addrs"`
}

// tcpAddr is the daemon's TCP listen address.
func (r ready) tcpAddr(t *testing.T) string {
	t.Helper()
	for _, a := range r.ListenAddrs {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	t.Fatalf("no TCP address in %v", r.ListenAddrs)
	return ""
}

// traced daemon: aurad run by strace, which writes the trace file.
type daemon struct {
	t       *testing.T
	dir     string
	trace   string
	journal string
	cmd     *exec.Cmd // strace; aurad is its child, in its process group
	log     *bytes.Buffer
	exited  chan struct{}
	waitErr error
	ready   ready
}

func newDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "auradur")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// start runs aurad under strace on a fresh data dir and waits until it
// answers. Only TCP is listened on, so every frame to a peer is a write on a
// TCP socket.
func start(t *testing.T) *daemon {
	t.Helper()
	straceBin := needStrace(t)
	build(t)
	dir := newDataDir(t)
	d := &daemon{
		t: t, dir: dir, log: &bytes.Buffer{}, exited: make(chan struct{}),
		trace:   filepath.Join(dir, "strace.out"),
		journal: filepath.Join(dir, "journal.db"),
	}
	d.cmd = exec.Command(straceBin,
		"-f", "--seccomp-bpf", "-ttt", "-yy", "-xx", "-s", "65536",
		"-e", "signal=none", "-e", "trace="+traced, "-o", d.trace,
		bins.aurad, "--datadir", dir, "--p2p-listen", "/ip4/127.0.0.1/tcp/0")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.Env = append(os.Environ(), "HOME="+dir)
	// Its own process group, so cleanup reaches aurad even if strace dies.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.exited
		}
		if strings.Contains(d.log.String(), "\tERROR\t") || strings.Contains(d.log.String(), "DATA RACE") {
			t.Errorf("aurad logged an error or a race:\n%s", d.log)
		}
	})
	deadline := time.Now().Add(hangGuard)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "ready.json")); err == nil && json.Unmarshal(b, &d.ready) == nil {
			if _, code := d.ctl("status"); code == 0 {
				return d
			}
		}
		select {
		case <-d.exited:
			t.Fatalf("aurad exited during start: %v\n%s", d.waitErr, d.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("aurad not ready:\n%s", d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop asks aurad to exit, waits for it and strace, and returns the trace.
func (d *daemon) stop() []*event {
	d.t.Helper()
	if out, code := d.ctl("stop"); code != 0 {
		d.t.Fatalf("auractl stop: exit %d: %s", code, out)
	}
	select {
	case <-d.exited:
	case <-time.After(hangGuard):
		d.t.Fatalf("aurad did not exit:\n%s", d.log)
	}
	if d.waitErr != nil {
		d.t.Fatalf("aurad under strace exited with %v:\n%s", d.waitErr, d.log)
	}
	f, err := os.Open(d.trace)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	events, err := parseTrace(f)
	if err != nil {
		d.t.Fatal(err)
	}
	return events
}

// ctl runs auractl against the daemon and returns its output and exit code.
func (d *daemon) ctl(args ...string) (string, int) {
	d.t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bins.auractl, append([]string{"--datadir", d.dir}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String() + errb.String(), ee.ExitCode()
	}
	if err != nil {
		d.t.Fatal(err)
	}
	return out.String(), 0
}

func (d *daemon) ctlJSON(v any, args ...string) {
	d.t.Helper()
	out, code := d.ctl(append([]string{"-o", "json"}, args...)...)
	if code != 0 {
		d.t.Fatalf("auractl %v: exit %d: %s", args, code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		d.t.Fatalf("auractl %v: %v in %q", args, err, out)
	}
}

// report fails t with up to a few of errs (one cause usually breaks every
// check alike) and says whether there were any.
func report(t *testing.T, what string, errs []string) bool {
	t.Helper()
	const shown = 4
	for i, e := range errs {
		if i == shown {
			t.Errorf("%s: ... and %d more like these", what, len(errs)-shown)
			break
		}
		t.Errorf("%s: %s", what, e)
	}
	return len(errs) > 0
}
