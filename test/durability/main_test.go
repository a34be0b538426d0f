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
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aura-p2p/aura/internal/node"
	"github.com/aura-p2p/aura/test/cluster"
)

// traced are the syscalls the checks read: everything that can write a
// journal page or a socket, and the two that make a file durable.
const traced = "write,pwrite64,writev,pwritev,pwritev2,sendmsg,sendto,fsync,fdatasync"

func TestMain(m *testing.M) { cluster.Main(m) }

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

// daemon is aurad run by strace, which writes the trace file; the cluster
// harness's process runner runs it.
type daemon struct {
	*cluster.Process
	t       *testing.T
	trace   string
	journal string
	ready   node.ReadyInfo
}

// tcpAddr is the daemon's TCP listen address.
func (d *daemon) tcpAddr() string {
	d.t.Helper()
	for _, a := range d.ready.ListenAddrs {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	d.t.Fatalf("no TCP address in %v", d.ready.ListenAddrs)
	return ""
}

// start runs aurad under strace on a fresh data dir and waits until it is
// ready. Only TCP is listened on, so every frame to a peer is a write on a
// TCP socket.
func start(t *testing.T) *daemon {
	t.Helper()
	straceBin := needStrace(t)
	dir := cluster.NewDataDir(t)
	trace := filepath.Join(dir, "strace.out")
	p := cluster.StartProcess(t, dir, cluster.ProcessOptions{
		Wrap: []string{straceBin,
			"-f", "--seccomp-bpf", "-ttt", "-yy", "-xx", "-s", "65536",
			"-e", "signal=none", "-e", "trace=" + traced, "-o", trace},
		Args: []string{"--p2p-listen", "/ip4/127.0.0.1/tcp/0"},
	})
	return &daemon{Process: p, t: t, trace: trace, journal: filepath.Join(dir, "journal.db"), ready: p.Ready()}
}

// stop asks aurad to exit, waits for it and strace, and returns the trace.
func (d *daemon) stop() []*event {
	d.t.Helper()
	d.Stop()
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
	return cluster.Ctl(d.t, d.Dir(), args...)
}

func (d *daemon) ctlJSON(v any, args ...string) {
	d.t.Helper()
	cluster.CtlJSON(d.t, d.Dir(), v, args...)
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
