package budget

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// The crash test runs a child process (this test binary, re-executed) that
// charges under load and prints every receipt it got back, then kills it with
// SIGKILL part way. A receipt handed out is a promise that its charge is
// durable, so after reopening, the budget must show at least everything the
// child printed: never more headroom than before the crash.

const crashEnv = "AURA_BUDGET_CRASH_DIR"

const (
	crashCost     = 3
	crashWorkers  = 8
	crashRequired = 300 // receipts seen before the kill
)

var crashPeer = core.DeviceID{0xee}

func crashConfig() Config {
	cfg := DefaultConfig()
	cfg.EpochDuration = time.Hour
	return cfg
}

// TestCrashChild is the child's body; it does nothing unless run by
// TestKillDuringCharging.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("run by TestKillDuringCharging")
	}
	ctx := context.Background()
	signer := seededSigner(1)
	j, err := journal.Open(ctx, journal.Options{Path: filepath.Join(dir, "journal.db"), Validators: Validators()})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	l, err := Open(ctx, j, crashConfig(), signer, core.SystemClock{}, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var out sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := Key{Context: core.ContextID{byte(g % 2)}, Peer: crashPeer}
			for {
				r, err := l.Charge(ctx, k, core.ClassGroup, crashCost, core.Leakage{1, 0, 0}, nil)
				if err != nil {
					out.Lock()
					fmt.Fprintln(w, "error", err)
					w.Flush()
					out.Unlock()
					return
				}
				out.Lock()
				fmt.Fprintf(w, "receipt %d %d %d\n", r.Context[0], r.Epoch, r.Nonce)
				w.Flush()
				out.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(3)
}

func TestKillDuringCharging(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	for round := range 3 {
		// Each round continues the chains of the one before.
		maxNonce := map[byte]uint64{}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		var epoch uint64
		n := 0
		for n < crashRequired && sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 4 && f[0] == "receipt" {
				c, _ := strconv.Atoi(f[1])
				epoch, _ = strconv.ParseUint(f[2], 10, 64)
				nonce, _ := strconv.ParseUint(f[3], 10, 64)
				maxNonce[byte(c)] = max(maxNonce[byte(c)], nonce)
				n++
			} else if f[0] == "error" {
				t.Fatalf("child: %s", sc.Text())
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		// Receipts printed between our last read and the kill count too.
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 4 && f[0] == "receipt" {
				c, _ := strconv.Atoi(f[1])
				nonce, _ := strconv.ParseUint(f[3], 10, 64)
				maxNonce[byte(c)] = max(maxNonce[byte(c)], nonce)
			}
		}
		cmd.Wait()
		if n < crashRequired {
			t.Fatalf("round %d: child printed only %d receipts", round, n)
		}

		ctx := context.Background()
		j, err := journal.Open(ctx, journal.Options{Path: filepath.Join(dir, "journal.db"), Validators: Validators()})
		if err != nil {
			t.Fatal(err)
		}
		l, err := Open(ctx, j, crashConfig(), seededSigner(1), core.SystemClock{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for c, want := range maxNonce {
			k := Key{Context: core.ContextID{c}, Peer: crashPeer}
			en, err := l.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if uint64(en.Epoch) != epoch {
				continue // the hour turned during the round: nothing to compare
			}
			// Every charge costs the same, so spent = nonce × cost exactly.
			if en.LastNonce < want || en.State.Spent != en.LastNonce*crashCost {
				t.Fatalf("round %d context %d: durable nonce %d spent %d, child saw nonce %d", round, c, en.LastNonce, en.State.Spent, want)
			}
			r, err := l.Charge(ctx, k, core.ClassGroup, crashCost, core.Leakage{}, nil)
			if err != nil || r.Nonce != en.LastNonce+1 {
				t.Fatalf("round %d: chain does not continue: %+v %v", round, r, err)
			}
			t.Logf("round %d context %d: child saw nonce %d, durable %d", round, c, want, en.LastNonce)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
