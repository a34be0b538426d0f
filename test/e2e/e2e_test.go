// Package e2e runs multi-node scenarios on the cluster harness, each on
// in-process nodes and on real aurad processes, driven the way a person or a
// script drives them: auractl, JSON out, signals to aurad.
package e2e

import (
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
	"github.com/aura-p2p/aura/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

type fact struct {
	ID      string `json:"id"`
	TypeID  string `json:"type_id"`
	Payload []byte `json:"payload"`
}

func TestWalkthroughThroughAuractl(t *testing.T) {
	cluster.Run(t, 1, walkthrough)
}

func walkthrough(t *testing.T, c *cluster.Cluster) {
	n := c.Node(0)
	dir := n.Dir()

	var status struct {
		DeviceID    string `json:"device_id"`
		AuthorityID string `json:"authority_id"`
	}
	n.CtlJSON(&status, "status")
	if len(status.DeviceID) != 64 || len(status.AuthorityID) != 64 {
		t.Fatalf("status %+v", status)
	}
	var appended struct {
		ID string `json:"id"`
	}
	n.CtlJSON(&appended, "fact", "append", "--type", "app.note/v1", "--payload", "hello")
	var list struct {
		Facts []fact `json:"facts"`
	}
	n.CtlJSON(&list, "fact", "list", "--type", "app.note/v1")
	if len(list.Facts) != 1 || list.Facts[0].ID != appended.ID || string(list.Facts[0].Payload) != "hello" || list.Facts[0].TypeID != "app.note/v1" {
		t.Fatalf("list %+v", list)
	}
	// The shortened ids tables print are accepted, as git accepts them.
	var got struct {
		Fact fact `json:"fact"`
	}
	n.CtlJSON(&got, "fact", "get", appended.ID[:16])
	if got.Fact.ID != appended.ID {
		t.Fatalf("fact get by prefix: %+v", got)
	}
	for range 3 {
		if _, code := n.Ctl("crdt", "counter", "incr", "visits", "--by", "2"); code != 0 {
			t.Fatal("incr failed")
		}
	}
	if out, _ := n.Ctl("crdt", "counter", "get", "visits"); strings.TrimSpace(out) != "6" {
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
		{[]string{"fact", "get", "0000000"}, 4},
		{[]string{"fact", "get", strings.Repeat("0", 12)}, 5},
		{[]string{"fact", "list", "--page-token", "garbage"}, 4},
		{[]string{"crdt", "set", "add", "visits", "x"}, 7},
		{[]string{"fact", "append", "--namespace", "context/" + strings.Repeat("ab", 32), "--type", "app.x/v1", "--payload", "x"}, 5},
	} {
		if out, code := n.Ctl(tc.args...); code != tc.code {
			t.Errorf("auractl %v: exit %d, want %d: %s", tc.args, code, tc.code, out)
		}
	}
	var after struct {
		Journal struct {
			FactCount string `json:"fact_count"`
		} `json:"journal"`
	}
	n.CtlJSON(&after, "status")
	if after.Journal.FactCount != "5" { // genesis, note, three increments
		t.Fatalf("fact count %s after bad input", after.Journal.FactCount)
	}

	n.Stop()
	if out, code := n.Ctl("status"); code != 3 || !strings.Contains(out, "aurad is not running at") {
		t.Fatalf("status of a stopped daemon: exit %d %q", code, out)
	}
}

// Process-only: signals and a second daemon on one data dir are about the
// process, not the cluster.
func TestSigtermExitsZeroAndSecondDaemonRefuses(t *testing.T) {
	dir := cluster.NewDataDir(t)
	d := cluster.StartProcess(t, dir, cluster.ProcessOptions{})
	second := exec.Command(cluster.Aurad(t), "--datadir", dir)
	out, err := second.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(string(out), fmt.Sprintf("pid %d", d.Pid())) {
		t.Fatalf("second aurad: %v %q", err, out)
	}
	d.Signal(syscall.SIGTERM)
	if code := d.ExitCode(); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, d.Log())
	}
}

// Every append that was acknowledged before a SIGKILL is there after restart.
func TestKill9DuringAppendsLosesNothingAcknowledged(t *testing.T) {
	cluster.Run(t, 1, func(t *testing.T, c *cluster.Cluster) {
		killDuringAppends(t, c.Node(0))
	}, cluster.Crash)
}

func killDuringAppends(t *testing.T, n *cluster.Node) {

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
				out, code := n.Ctl("-o", "json", "fact", "append", "--type", "app.load/v1", "--payload", fmt.Sprintf("cli-%d-%d", w, i))
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
	conn, err := grpc.NewClient("unix://"+n.Socket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
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
	n.Kill()
	cancel()
	wg.Wait()
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	if nAcked < 50 {
		t.Fatalf("only %d appends acknowledged before the kill; the load did not run", nAcked)
	}

	n.Start()
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
		n.CtlJSON(&page, args...)
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
		t.Fatalf("%d of %d acknowledged facts missing after kill -9", missing, nAcked)
	}
	t.Logf("%d acknowledged, %d present after kill -9 and restart", nAcked, len(present))
	n.Stop()
}
