// Command restart measures what issue 2 asks of a stored journal and of the
// daemon binary: time from exec of aurad to its first answered GetStatus with
// N facts stored, the idle daemon's resident memory, the journal file's size,
// and (for a fresh, empty daemon) first-start time, idle memory and binary
// sizes.
//
//	go run ./bench/restart -facts 1000000
//
// It builds aurad twice (plain and -trimpath -ldflags="-s -w") into a temp
// work dir, runs the plain build with --datadir in that dir, fills the journal
// through JournalService.AppendFact from many concurrent clients (so the store
// is exactly what a real daemon writes), stops it with SIGTERM, then restarts
// it -runs times. Children die with the harness (Pdeathsig) and are killed on
// any error or signal; temp dirs are removed unless -keep.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
)

type options struct {
	facts        uint64
	runs         int
	clients      int
	conns        int
	payload      int
	aurad        string
	datadir      string
	workdir      string
	keep         bool
	settle       time.Duration
	readyTimeout time.Duration
	timeout      time.Duration
	noFresh      bool
	cold         bool
	check        bool
}

func main() {
	var o options
	flag.Uint64Var(&o.facts, "facts", 1_000_000, "facts the journal must hold (the genesis counts)")
	flag.IntVar(&o.runs, "runs", 5, "restarts to time; the median is reported")
	flag.IntVar(&o.clients, "clients", 256, "concurrent AppendFact clients while populating")
	flag.IntVar(&o.conns, "conns", 8, "gRPC connections the populating clients share")
	flag.IntVar(&o.payload, "payload", 200, "payload bytes per populated fact")
	flag.StringVar(&o.aurad, "aurad", "", "aurad binary to measure (default: build ./cmd/aurad into the work dir)")
	flag.StringVar(&o.datadir, "datadir", "", "data dir to use and keep; filled up to -facts if it holds fewer (default: a fresh one in the work dir)")
	flag.StringVar(&o.workdir, "workdir", "", "parent of the temp work dir (default os.TempDir())")
	flag.BoolVar(&o.keep, "keep", false, "keep the work dir (binaries, data dirs, daemon logs)")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait after ready before reading the idle RSS")
	flag.DurationVar(&o.readyTimeout, "ready-timeout", 60*time.Second, "give up on a start that is not ready after this")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Minute, "give up on the whole run after this")
	flag.BoolVar(&o.noFresh, "no-fresh", false, "skip the fresh-daemon and binary-size measurements")
	flag.BoolVar(&o.cold, "cold", true, "also time -runs restarts with journal.db and the binary evicted from the page cache (posix_fadvise DONTNEED; nothing system-wide)")
	flag.BoolVar(&o.check, "check", true, "also time `aurad check` and `aurad check --full` on the stopped journal")
	flag.Parse()
	if o.runs < 1 || o.clients < 1 || o.conns < 1 || o.payload < 1 {
		fmt.Fprintln(os.Stderr, "restart: -runs, -clients, -conns and -payload must be positive")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	h := &harness{o: o}
	err := h.run(ctx)
	h.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "restart:", err)
		os.Exit(1)
	}
}

type harness struct {
	o    options
	work string

	mu       sync.Mutex
	children map[*daemon]struct{}
	logN     int
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// cleanup kills any daemon still running and removes the work dir unless -keep.
func (h *harness) cleanup() {
	h.mu.Lock()
	for d := range h.children {
		d.kill()
	}
	h.mu.Unlock()
	if h.work == "" {
		return
	}
	if h.o.keep {
		logf("kept %s", h.work)
		return
	}
	os.RemoveAll(h.work)
}

type row struct{ name, value, note string }

func (h *harness) run(ctx context.Context) error {
	var err error
	if h.work, err = os.MkdirTemp(h.o.workdir, "aurarestart"); err != nil {
		return err
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	var rows []row

	bin := h.o.aurad
	if bin == "" {
		bin = filepath.Join(h.work, "aurad")
		logf("building %s", bin)
		if err := goBuild(ctx, root, bin); err != nil {
			return err
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return err
	}

	dataDir := h.o.datadir
	if dataDir == "" {
		dataDir = filepath.Join(h.work, "full")
	} else if dataDir, err = filepath.Abs(dataDir); err != nil {
		return err
	}
	if err := checkSocketPath(dataDir); err != nil {
		return err
	}

	// Populate.
	d, _, err := h.start(ctx, bin, dataDir)
	if err != nil {
		return err
	}
	st, err := status(ctx, d.sock)
	if err != nil {
		return err
	}
	have := st.GetJournal().GetFactCount()
	if have < h.o.facts {
		logf("populating %s: %d facts stored, appending %d with %d clients on %d conns",
			dataDir, have, h.o.facts-have, h.o.clients, h.o.conns)
		rate, err := h.populate(ctx, d.sock, h.o.facts-have)
		if err != nil {
			return err
		}
		rows = append(rows, row{"populate rate", fmt.Sprintf("%.0f facts/s", rate),
			fmt.Sprintf("AppendFact, %d clients / %d conns, %d-byte payloads, durable", h.o.clients, h.o.conns, h.o.payload)})
	} else {
		logf("%s already holds %d facts", dataDir, have)
	}
	if _, err := h.stop(d); err != nil {
		return err
	}

	// Restarts.
	var readies []time.Duration
	var rss []procMem
	var stops []time.Duration
	var facts uint64
	for i := range h.o.runs {
		d, ready, err := h.start(ctx, bin, dataDir)
		if err != nil {
			return err
		}
		st, err := status(ctx, d.sock)
		if err != nil {
			return err
		}
		facts = st.GetJournal().GetFactCount()
		if err := sleep(ctx, h.o.settle); err != nil {
			return err
		}
		m, err := readMem(d.cmd.Process.Pid)
		if err != nil {
			return err
		}
		took, err := h.stop(d)
		if err != nil {
			return err
		}
		logf("restart %d/%d: ready in %v, idle RSS %s (anon %s, file %s), SIGTERM exit in %v",
			i+1, h.o.runs, ready.Round(10*time.Microsecond), mib(m.rss), mib(m.anon), mib(m.file), took.Round(time.Millisecond))
		readies, rss, stops = append(readies, ready), append(rss, m), append(stops, took)
	}
	var coldRows []row
	if h.o.cold {
		var colds []time.Duration
		var coldMem []procMem
		for i := range h.o.runs {
			for _, f := range []string{filepath.Join(dataDir, "journal.db"), bin} {
				if err := evict(f); err != nil {
					return err
				}
			}
			d, ready, err := h.start(ctx, bin, dataDir)
			if err != nil {
				return err
			}
			if err := sleep(ctx, h.o.settle); err != nil {
				return err
			}
			m, err := readMem(d.cmd.Process.Pid)
			if err != nil {
				return err
			}
			if _, err := h.stop(d); err != nil {
				return err
			}
			logf("cold restart %d/%d: ready in %v, idle RSS %s", i+1, h.o.runs, ready.Round(10*time.Microsecond), mib(m.rss))
			colds, coldMem = append(colds, ready), append(coldMem, m)
		}
		medCold := median(coldMem, func(a, b procMem) int { return cmp.Compare(a.rss, b.rss) })
		coldRows = []row{
			{"restart → ready, cold (median)", ms(median(colds, cmp.Compare)), "journal.db and aurad evicted from the page cache first; runs: " + joinDur(colds)},
			{"idle RSS after cold restart (median)", mib(medCold.rss), fmt.Sprintf("anon %s, file %s", mib(medCold.anon), mib(medCold.file))},
		}
	}
	jsize, err := fileSize(filepath.Join(dataDir, "journal.db"))
	if err != nil {
		return err
	}
	medMem := median(rss, func(a, b procMem) int { return cmp.Compare(a.rss, b.rss) })
	rows = append(rows,
		row{"facts stored", strconv.FormatUint(facts, 10), "GetStatus journal.fact_count"},
		row{"journal.db size", mib(jsize), fmt.Sprintf("%.0f bytes/fact", float64(jsize)/float64(max(facts, 1)))},
		row{"restart → ready (median)", ms(median(readies, cmp.Compare)), "exec to first answered GetStatus; runs: " + joinDur(readies)},
		row{"idle RSS after restart (median)", mib(medMem.rss), fmt.Sprintf("VmRSS %v after ready; anon %s, file %s, VmHWM %s",
			h.o.settle, mib(medMem.anon), mib(medMem.file), mib(medMem.hwm))},
		row{"SIGTERM → exit (median)", ms(median(stops, cmp.Compare)), "idle daemon"},
	)
	rows = append(rows, coldRows...)
	if h.o.check {
		checks, err := h.checkTimes(ctx, bin, dataDir)
		if err != nil {
			return err
		}
		rows = append(rows, checks...)
	}

	if !h.o.noFresh {
		fresh, err := h.freshDaemon(ctx, bin)
		if err != nil {
			return err
		}
		rows = append(rows, fresh...)
		sizes, err := h.binarySizes(ctx, root, bin)
		if err != nil {
			return err
		}
		rows = append(rows, sizes...)
	}

	fmt.Printf("\naurad restart/memory figures (%d facts target, GOMAXPROCS from the environment, %s)\n\n", h.o.facts, bin)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\tvalue\tnote")
	fmt.Fprintln(tw, "-----------\t-----\t----")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.name, r.value, r.note)
	}
	return tw.Flush()
}

// freshDaemon measures a daemon on an empty data dir: the first start (keys,
// genesis), a restart, and idle memory.
func (h *harness) freshDaemon(ctx context.Context, bin string) ([]row, error) {
	dir := filepath.Join(h.work, "empty")
	d, first, err := h.start(ctx, bin, dir)
	if err != nil {
		return nil, err
	}
	if err := sleep(ctx, h.o.settle); err != nil {
		return nil, err
	}
	m, err := readMem(d.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	if _, err := h.stop(d); err != nil {
		return nil, err
	}
	var readies []time.Duration
	for range 3 {
		d, ready, err := h.start(ctx, bin, dir)
		if err != nil {
			return nil, err
		}
		if _, err := h.stop(d); err != nil {
			return nil, err
		}
		readies = append(readies, ready)
	}
	logf("fresh daemon: first start %v, restarts %s, idle RSS %s", first.Round(10*time.Microsecond), joinDur(readies), mib(m.rss))
	return []row{
		{"fresh daemon: first start → ready", ms(first), "creates keys and the authority genesis"},
		{"fresh daemon: restart → ready (median)", ms(median(readies, cmp.Compare)), "runs: " + joinDur(readies)},
		{"fresh daemon: idle RSS", mib(m.rss), fmt.Sprintf("VmRSS %v after ready; anon %s, file %s", h.o.settle, mib(m.anon), mib(m.file))},
	}, nil
}

func (h *harness) binarySizes(ctx context.Context, root, bin string) ([]row, error) {
	plain, err := fileSize(bin)
	if err != nil {
		return nil, err
	}
	stripped := filepath.Join(h.work, "aurad-stripped")
	logf("building %s (-trimpath -ldflags=\"-s -w\")", stripped)
	if err := goBuild(ctx, root, stripped, "-trimpath", "-ldflags=-s -w"); err != nil {
		return nil, err
	}
	small, err := fileSize(stripped)
	if err != nil {
		return nil, err
	}
	return []row{
		{"binary size (measured binary)", mib(plain), bin},
		{"binary size -trimpath -ldflags=\"-s -w\"", mib(small), "go build of ./cmd/aurad"},
	}, nil
}

// daemon is a running aurad child.
type daemon struct {
	cmd    *exec.Cmd
	sock   string
	log    string
	exited chan struct{}
	err    error // valid once exited is closed
}

func (d *daemon) kill() {
	select {
	case <-d.exited:
	default:
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

func checkSocketPath(dataDir string) error {
	if sock := filepath.Join(dataDir, "aurad.sock"); len(sock) >= 108 {
		return fmt.Errorf("socket path %s is %d bytes; unix sockets allow 107: use a shorter -datadir or -workdir", sock, len(sock))
	}
	return nil
}

// start execs aurad on dataDir and returns once GetStatus answers, with the
// time from exec to that answer.
func (h *harness) start(ctx context.Context, bin, dataDir string) (*daemon, time.Duration, error) {
	if err := checkSocketPath(dataDir); err != nil {
		return nil, 0, err
	}
	h.mu.Lock()
	h.logN++
	logPath := filepath.Join(h.work, fmt.Sprintf("aurad-%02d.log", h.logN))
	h.mu.Unlock()
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, 0, err
	}
	defer lf.Close()
	d := &daemon{sock: filepath.Join(dataDir, "aurad.sock"), log: logPath, exited: make(chan struct{})}
	d.cmd = exec.Command(bin, "--datadir", dataDir)
	d.cmd.Stdout, d.cmd.Stderr = lf, lf
	d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=") // never talk to a real supervisor
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}

	t0 := time.Now()
	if err := d.cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("exec %s: %w", bin, err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.exited) }()
	h.mu.Lock()
	if h.children == nil {
		h.children = map[*daemon]struct{}{}
	}
	h.children[d] = struct{}{}
	h.mu.Unlock()

	took, err := waitReady(ctx, d, t0, h.o.readyTimeout)
	if err != nil {
		h.forget(d)
		d.kill()
		return nil, 0, fmt.Errorf("%w\n--- %s (tail) ---\n%s", err, logPath, tail(logPath, 20))
	}
	return d, took, nil
}

func (h *harness) forget(d *daemon) {
	h.mu.Lock()
	delete(h.children, d)
	h.mu.Unlock()
}

// waitReady polls the socket until GetStatus answers. Dialing the socket
// directly first keeps each attempt cheap and avoids gRPC's reconnect backoff.
func waitReady(ctx context.Context, d *daemon, t0 time.Time, limit time.Duration) (time.Duration, error) {
	deadline := t0.Add(limit)
	for {
		select {
		case <-d.exited:
			return 0, fmt.Errorf("aurad exited before it was ready: %v", d.err)
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("aurad not ready after %v", limit)
		}
		c, err := net.DialTimeout("unix", d.sock, 100*time.Millisecond)
		if err != nil {
			time.Sleep(500 * time.Microsecond)
			continue
		}
		c.Close()
		cctx, cancel := context.WithTimeout(ctx, time.Until(deadline))
		_, err = status(cctx, d.sock)
		cancel()
		if err == nil {
			return time.Since(t0), nil
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// stop sends SIGTERM and waits for a clean exit, killing after 10 s.
func (h *harness) stop(d *daemon) (time.Duration, error) {
	defer h.forget(d)
	t0 := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.kill()
		return 0, fmt.Errorf("aurad did not exit within 10 s of SIGTERM (killed)\n--- %s (tail) ---\n%s", d.log, tail(d.log, 20))
	}
	took := time.Since(t0)
	if d.err != nil {
		return took, fmt.Errorf("aurad exited after SIGTERM: %v\n--- %s (tail) ---\n%s", d.err, d.log, tail(d.log, 20))
	}
	return took, nil
}

func dial(sock string) (*grpc.ClientConn, error) {
	return grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

func status(ctx context.Context, sock string) (*nodev1.GetStatusResponse, error) {
	c, err := dial(sock)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return nodev1.NewNodeServiceClient(c).GetStatus(ctx, &nodev1.GetStatusRequest{}, grpc.WaitForReady(true))
}

// populate appends n facts through the API from many concurrent clients.
func (h *harness) populate(ctx context.Context, sock string, n uint64) (float64, error) {
	conns := make([]*grpc.ClientConn, h.o.conns)
	for i := range conns {
		c, err := dial(sock)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		conns[i] = c
	}
	payload := make([]byte, h.o.payload)
	if _, err := rand.Read(payload); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next, done atomic.Uint64
		firstErr   atomic.Pointer[error]
		wg         sync.WaitGroup
	)
	t0 := time.Now()
	for i := range h.o.clients {
		js := journalv1.NewJournalServiceClient(conns[i%len(conns)])
		wg.Go(func() {
			req := &journalv1.AppendFactRequest{TypeId: "bench.fact", Payload: payload}
			for next.Add(1) <= n {
				cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
				_, err := js.AppendFact(cctx, req, grpc.WaitForReady(true))
				ccancel()
				if err != nil {
					if firstErr.CompareAndSwap(nil, &err) {
						cancel()
					}
					return
				}
				done.Add(1)
			}
		})
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				c := done.Load()
				logf("  %d/%d facts (%.0f%%), %.0f facts/s", c, n, 100*float64(c)/float64(n), float64(c)/time.Since(t0).Seconds())
			}
		}
	}()
	wg.Wait()
	close(stopProgress)
	<-progressDone
	if err := firstErr.Load(); err != nil {
		return 0, fmt.Errorf("populate after %d facts: %w", done.Load(), *err)
	}
	el := time.Since(t0)
	rate := float64(n) / el.Seconds()
	logf("populated %d facts in %v (%.0f facts/s)", n, el.Round(time.Millisecond), rate)
	return rate, nil
}

type procMem struct{ rss, hwm, anon, file int64 }

// readMem reads the resident set sizes (bytes) from /proc/pid/status.
func readMem(pid int) (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, err
	}
	var m procMem
	fields := map[string]*int64{"VmRSS:": &m.rss, "VmHWM:": &m.hwm, "RssAnon:": &m.anon, "RssFile:": &m.file}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			if p, ok := fields[f[0]]; ok {
				v, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					return procMem{}, fmt.Errorf("/proc/%d/status %s: %w", pid, f[0], err)
				}
				*p = v * 1024
			}
		}
	}
	if m.rss == 0 {
		return procMem{}, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
	}
	return m, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run this from inside the aura module (go run ./bench/restart)")
	}
	return filepath.Dir(mod), nil
}

func goBuild(ctx context.Context, root, out string, flags ...string) error {
	args := append(append([]string{"build"}, flags...), "-o", out, "./cmd/aurad")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// evict drops a file's clean pages from the page cache, so the next start
// reads it from disk. It touches only that file.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("posix_fadvise %s: %w", path, err)
	}
	return nil
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func median[T any](xs []T, less func(a, b T) int) T {
	s := slices.Clone(xs)
	slices.SortFunc(s, less)
	return s[len(s)/2]
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func joinDur(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = ms(d)
	}
	return strings.Join(s, ", ")
}

// checkTimes times the offline checks on the stopped daemon's data dir: the
// quick one (what every start runs, plus the schema) and the full one (every
// page, every fact's id and signature).
func (h *harness) checkTimes(ctx context.Context, bin, dataDir string) ([]row, error) {
	var rows []row
	for _, full := range []bool{false, true} {
		args := []string{"check", "--datadir", dataDir}
		name := "aurad check (quick)"
		if full {
			args = append(args, "--full")
			name = "aurad check --full"
		}
		var times []time.Duration
		runs := h.o.runs
		if full {
			runs = 1
		}
		for range runs {
			t0 := time.Now()
			out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("%s: %w\n%s", name, err, out)
			}
			times = append(times, time.Since(t0))
		}
		rows = append(rows, row{name, ms(median(times, cmp.Compare)), "process exec to exit; runs: " + joinDur(times)})
	}
	return rows, nil
}
