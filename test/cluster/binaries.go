// Package cluster is the multi-node test harness: a scenario is written once
// against Cluster and Node and runs on two runners, nodes inside the test
// process on an in-memory libp2p network whose links can be partitioned,
// healed and slowed, and real aurad processes on loopback sockets that can be
// restarted and killed with SIGKILL. Both runners are driven the same way a
// person or a script drives a daemon: through the auractl binary, -o json.
package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// binaries are aurad and auractl, built once per test binary into a
// temporary directory that Main removes.
var binaries struct {
	once                sync.Once
	err                 error
	dir, aurad, auractl string
}

// Main runs a package's tests and removes the binaries built for them. A
// test package that uses the cluster calls it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// build compiles the binaries on first use. aurad is built with the race
// detector, so the process runner checks the daemon for races as the
// in-process runner does.
func build(t testing.TB) {
	t.Helper()
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "aurabin")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		binaries.aurad = filepath.Join(dir, "aurad")
		binaries.auractl = filepath.Join(dir, "auractl")
		for _, b := range [][]string{
			{"build", "-race", "-o", binaries.aurad, "github.com/aura-p2p/aura/cmd/aurad"},
			{"build", "-o", binaries.auractl, "github.com/aura-p2p/aura/cmd/auractl"},
		} {
			if out, err := exec.Command("go", b...).CombinedOutput(); err != nil {
				binaries.err = fmt.Errorf("go %s: %w\n%s", strings.Join(b, " "), err, out)
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
}

// Aurad is the path of the built aurad binary.
func Aurad(t testing.TB) string {
	build(t)
	return binaries.aurad
}

// Auractl is the path of the built auractl binary.
func Auractl(t testing.TB) string {
	build(t)
	return binaries.auractl
}
