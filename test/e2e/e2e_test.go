// Package e2e drives real aurad and auractl processes the way a person or a
// script does: JSON out of auractl, signals to aurad.
package e2e

import (
	"bytes"
	"context"
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
)

var bins struct {
	dir, aurad, auractl string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aurabin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	bins.aurad = filepath.Join(dir, "aurad")
	bins.auractl = filepath.Join(dir, "auractl")
	// aurad is built with the race detector so the process tests check it too.
	for _, b := range [][]string{
		{"build", "-race", "-o", bins.aurad, "github.com/aura-p2p/aura/cmd/aurad"},
		{"build", "-o", bins.auractl, "github.com/aura-p2p/aura/cmd/auractl"},
	} {
		cmd := exec.Command("go", b...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building binaries:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type daemon struct {
	t       *testing.T
	dir     string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	exited  chan struct{}
	waitErr error
}

func newDataDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "aurae2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// start runs aurad on dir and waits until auractl can reach it.
func start(t *testing.T, dir string) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: dir, log: &bytes.Buffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(bins.aurad, "--datadir", dir)
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	d.cmd.Env = append(os.Environ(), "HOME="+dir)
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
			d.cmd.Process.Kill()
			<-d.exited
		}
		if strings.Contains(d.log.String(), "\tERROR\t") || strings.Contains(d.log.String(), "DATA RACE") {
			t.Errorf("aurad logged an error or a race:\n%s", d.log)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, code := ctl(t, dir, "status"); code == 0 {
			return d
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

func (d *daemon) signal(s os.Signal) { d.cmd.Process.Signal(s) }

// exitCode waits for the process and returns its exit code.
func (d *daemon) exitCode(timeout time.Duration) int {
	select {
	case <-d.exited:
	case <-time.After(timeout):
		d.t.Fatalf("aurad did not exit within %s:\n%s", timeout, d.log)
	}
	var ee *exec.ExitError
	if errors.As(d.waitErr, &ee) {
		return ee.ExitCode()
	}
	if d.waitErr != nil {
		d.t.Fatal(d.waitErr)
	}
	return 0
}

// ctl runs auractl against dir and returns stdout and the exit code.
func ctl(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bins.auractl, append([]string{"--datadir", dir}, args...)...)
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

func ctlJSON(t *testing.T, dir string, v any, args ...string) {
	t.Helper()
	out, code := ctl(t, dir, append([]string{"-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("auractl %v: exit %d: %s", args, code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("auractl %v: %v in %q", args, err, out)
	}
}

type fact struct {
	ID      string `json:"id"`
	TypeID  string `json:"type_id"`
	Payload []byte `json:"payload"`
}

func TestWalkthroughThroughAuractl(t *testing.T) {
	dir := newDataDir(t)
	d := start(t, dir)

	var status struct {
		DeviceID    string `json:"device_id"`
		AuthorityID string `json:"authority_id"`
	}
	ctlJSON(t, dir, &status, "status")
	if len(status.DeviceID) != 64 || len(status.AuthorityID) != 64 {
		t.Fatalf("status %+v", status)
	}
	var appended struct {
		ID string `json:"id"`
	}
	ctlJSON(t, dir, &appended, "fact", "append", "--type", "app.note/v1", "--payload", "hello")
	var list struct {
		Facts []fact `json:"facts"`
	}
	ctlJSON(t, dir, &list, "fact", "list", "--type", "app.note/v1")
	if len(list.Facts) != 1 || list.Facts[0].ID != appended.ID || string(list.Facts[0].Payload) != "hello" || list.Facts[0].TypeID != "app.note/v1" {
		t.Fatalf("list %+v", list)
	}
	for range 3 {
		if _, code := ctl(t, dir, "crdt", "counter", "incr", "visits", "--by", "2"); code != 0 {
			t.Fatal("incr failed")
		}
	}
	if out, _ := ctl(t, dir, "crdt", "counter", "get", "visits"); strings.TrimSpace(out) != "6" {
		t.Fatalf("counter %q", out)
	}

	// Bad input: one line, a distinct exit code, nothing stored.
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 70_000), 0o600)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"fact", "append", "--type", "app.x/v1", "--payload", "@" + big}, 4},
		{[]string{"fact", "append", "--type", "Bad Type", "--payload", "x"}, 4},
		{[]string{"fact", "get", strings.Repeat("0", 64)}, 5},
		{[]string{"fact", "list", "--page-token", "garbage"}, 4},
		{[]string{"crdt", "set", "add", "visits", "x"}, 7},
		{[]string{"fact", "append", "--namespace", "context/" + strings.Repeat("ab", 32), "--type", "app.x/v1", "--payload", "x"}, 5},
	} {
		if out, code := ctl(t, dir, tc.args...); code != tc.code {
			t.Errorf("auractl %v: exit %d, want %d: %s", tc.args, code, tc.code, out)
		}
	}
	var after struct {
		Journal struct {
			FactCount string `json:"fact_count"`
		} `json:"journal"`
	}
	ctlJSON(t, dir, &after, "status")
	if after.Journal.FactCount != "5" { // genesis, note, three increments
		t.Fatalf("fact count %s after bad input", after.Journal.FactCount)
	}

	if _, code := ctl(t, dir, "stop"); code != 0 {
		t.Fatal("stop failed")
	}
	if code := d.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("aurad exited %d after stop:\n%s", code, d.log)
	}
	if out, code := ctl(t, dir, "status"); code != 3 || !strings.Contains(out, "aurad is not running at") {
		t.Fatalf("status of a stopped daemon: exit %d %q", code, out)
	}
}

func TestSigtermExitsZeroAndSecondDaemonRefuses(t *testing.T) {
	dir := newDataDir(t)
	d := start(t, dir)
	second := exec.Command(bins.aurad, "--datadir", dir)
	out, err := second.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(string(out), fmt.Sprintf("pid %d", d.cmd.Process.Pid)) {
		t.Fatalf("second aurad: %v %q", err, out)
	}
	d.signal(syscall.SIGTERM)
	if code := d.exitCode(5 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, d.log)
	}
}

// Every append that was acknowledged before a SIGKILL is there after restart.
func TestKill9DuringAppendsLosesNothingAcknowledged(t *testing.T) {
	dir := newDataDir(t)
	d := start(t, dir)

	var mu sync.Mutex
	acked := map[string]bool{}
	ack := func(id string) {
		mu.Lock()
		acked[id] = true
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// Scripts appending through auractl...
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				out, code := ctl(t, dir, "-o", "json", "fact", "append", "--type", "app.load/v1", "--payload", fmt.Sprintf("cli-%d-%d", w, i))
				if code != 0 {
					return // the daemon died under us
				}
				var r struct {
					ID string `json:"id"`
				}
				if json.Unmarshal([]byte(out), &r) == nil && r.ID != "" {
					ack(r.ID)
				}
			}
		}()
	}
	// ...and programs appending through gRPC, for load.
	conn, err := grpc.NewClient("unix://"+filepath.Join(dir, "aurad.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	jc := journalv1.NewJournalServiceClient(conn)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				r, err := jc.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.load/v1", Payload: fmt.Appendf(nil, "rpc-%d-%d", w, i)})
				if err != nil {
					return
				}
				ack(r.GetId())
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.exitCode(10 * time.Second)
	cancel()
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < 50 {
		t.Fatalf("only %d appends acknowledged before the kill; the load did not run", n)
	}

	d2 := start(t, dir)
	present := map[string]bool{}
	token := ""
	for {
		args := []string{"fact", "list", "--type", "app.load/v1", "--limit", "1000"}
		if token != "" {
			args = append(args, "--page-token", token)
		}
		var page struct {
			Facts         []fact `json:"facts"`
			NextPageToken string `json:"next_page_token"`
		}
		ctlJSON(t, dir, &page, args...)
		for _, f := range page.Facts {
			present[f.ID] = true
		}
		if page.NextPageToken == "" {
			break
		}
		token = page.NextPageToken
	}
	missing := 0
	for id := range acked {
		if !present[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged facts missing after kill -9", missing, n)
	}
	t.Logf("%d acknowledged, %d present after kill -9 and restart", n, len(present))
	d2.signal(syscall.SIGTERM)
	if code := d2.exitCode(5 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
