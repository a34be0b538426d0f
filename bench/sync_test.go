package bench

// The bootstrap figures of issue 13: a device that lacks a namespace of
// 100,000 facts (200-byte payloads) takes it in from one peer, every fact
// verified and durable, between two real aurad processes on loopback (default
// config, each in its own data dir), driven as auractl and any other local
// client drive them.
//
//	go test -run '^$' -bench SyncBootstrap -benchtime 1x ./bench/
//	AURA_BENCH_SYNC_FACTS=1000000 go test -run '^$' -bench 'SyncBootstrap/receiver=lower-id' -benchtime 1x -timeout 60m ./bench/

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	contextv1 "github.com/aura-p2p/aura/api/proto/aura/context/v1"
	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	syncv1 "github.com/aura-p2p/aura/api/proto/aura/sync/v1"
	"github.com/aura-p2p/aura/internal/node"
)

const (
	syncFactsEnv     = "AURA_BENCH_SYNC_FACTS"
	defaultSyncFacts = 100_000
	// The sender's namespace is filled (setup, not timed) by this many
	// concurrent AppendFact clients sharing syncConns connections, so its
	// group commits carry many facts each.
	syncAppenders = 128
	syncConns     = 8
	// settleIdle is how long a daemon is left alone before its idle RSS is
	// read, as in bench/restart.
	settleIdle = 2 * time.Second
	// daemonGuard bounds a daemon's start and stop, syncGuard the timed
	// session, so a hung daemon fails the benchmark instead of stalling it.
	daemonGuard = time.Minute
	syncGuard   = 30 * time.Minute
	// userHZ is the unit of utime and stime in /proc/PID/stat: USER_HZ, part
	// of the kernel ABI and 100 on the architectures Go runs Linux on.
	userHZ = 100
)

// profileEnv names a directory: set, the daemons serve Go's profiler and a
// benchmark that supports it saves each daemon's CPU profile of its timed
// region there (A.cpu, B.cpu, …: for `go tool pprof -top <aurad> <file>`),
// and each one's goroutines 2 s into it (A.goroutines, …).
const profileEnv = "AURA_BENCH_PROFILE"

// profileSeconds is how much of the timed region a profile covers, from its
// start: shorter than the shortest timed region it is used for.
const profileSeconds = 5

// profileDaemons starts a CPU profile of each daemon, when profileEnv is
// set; the returned wait saves them once they end.
func profileDaemons(b *testing.B, ds ...*daemon) (wait func()) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}
	}
	var wg sync.WaitGroup
	for _, d := range ds {
		if d.ready.MetricsAddr == "" {
			b.Fatalf("%s serves no metrics listener to profile", d.name)
		}
		wg.Go(func() {
			resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", d.ready.MetricsAddr, profileSeconds))
			if err != nil {
				b.Errorf("%s: profile: %v", d.name, err)
				return
			}
			defer resp.Body.Close()
			out := filepath.Join(dir, strings.Fields(d.name)[0]+".cpu")
			f, err := os.Create(out)
			if err == nil {
				_, err = io.Copy(f, resp.Body)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				b.Errorf("%s: saving the profile: %v", d.name, err)
				return
			}
			b.Logf("%s: CPU profile of the first %d s of the timed region in %s", d.name, profileSeconds, out)
		})
		// Where the goroutines wait, once the transfer is under way: what
		// a CPU profile cannot show.
		wg.Go(func() {
			time.Sleep(2 * time.Second)
			resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/goroutine?debug=1", d.ready.MetricsAddr))
			if err != nil {
				b.Errorf("%s: goroutines: %v", d.name, err)
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, strings.Fields(d.name)[0]+".goroutines"), body, 0o600)
			}
			if err != nil {
				b.Errorf("%s: saving the goroutines: %v", d.name, err)
			}
		})
	}
	return wg.Wait
}

// syncBinaries are aurad and auractl built once per run of the test binary.
// Not test/cluster's: it builds aurad with the race detector, which would be
// what this measured.
var syncBinaries struct {
	once           sync.Once
	err            error
	aurad, auractl string
}

func buildSyncBinaries(b *testing.B) (aurad, auractl string) {
	b.Helper()
	bins := &syncBinaries
	bins.once.Do(func() {
		dir, err := os.MkdirTemp("", "asbin")
		if err != nil {
			bins.err = err
			return
		}
		shared.mu.Lock()
		shared.stops = append(shared.stops, func() { os.RemoveAll(dir) })
		shared.mu.Unlock()
		bins.aurad, bins.auractl = filepath.Join(dir, "aurad"), filepath.Join(dir, "auractl")
		for _, args := range [][]string{
			{"build", "-o", bins.aurad, "github.com/aura-p2p/aura/cmd/aurad"},
			{"build", "-o", bins.auractl, "github.com/aura-p2p/aura/cmd/auractl"},
		} {
			if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
	})
	if bins.err != nil {
		b.Fatal(bins.err)
	}
	return bins.aurad, bins.auractl
}

// daemon is one aurad process on its data dir, restartable; its stderr and
// stdout accumulate in logPath across starts.
type daemon struct {
	b              *testing.B
	name           string
	dir, logPath   string
	aurad, auractl string

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	ready   node.ReadyInfo
	conn    *grpc.ClientConn
}

func newDaemon(b *testing.B, name, work, aurad, auractl string) *daemon {
	d := &daemon{b: b, name: name, dir: filepath.Join(work, name), logPath: filepath.Join(work, name+".log"), aurad: aurad, auractl: auractl}
	if err := os.Mkdir(d.dir, 0o700); err != nil {
		b.Fatal(err)
	}
	d.start()
	return d
}

// start runs aurad and returns once its ready.json names the new process
// and it answers on its control socket.
func (d *daemon) start() {
	b := d.b
	b.Helper()
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(d.aurad, "--datadir", d.dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+d.dir)
	if os.Getenv(profileEnv) != "" {
		cmd.Env = append(cmd.Env, "AURAD_METRICS_LISTEN=127.0.0.1:0", "AURAD_METRICS_PPROF=true")
	}
	// A daemon must not outlive a benchmark that dies without its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		b.Fatal(err)
	}
	exited := make(chan struct{})
	d.cmd, d.exited = cmd, exited
	go func() {
		d.waitErr = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	b.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(daemonGuard)
	for {
		if r, ok := readReadyFile(d.dir); ok && r.PID == cmd.Process.Pid {
			d.ready = r
			break
		}
		select {
		case <-exited:
			b.Fatalf("%s: aurad exited during start: %v\n%s", d.name, d.waitErr, d.logTail())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: aurad not ready after %v\n%s", d.name, daemonGuard, d.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d.conn, err = dial(d.ready.Socket); err != nil {
		b.Fatal(err)
	}
	conn := d.conn
	b.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), daemonGuard)
	defer cancel()
	if _, err := nodev1.NewNodeServiceClient(conn).GetStatus(ctx, &nodev1.GetStatusRequest{}, grpc.WaitForReady(true)); err != nil {
		b.Fatalf("%s: GetStatus: %v\n%s", d.name, err, d.logTail())
	}
}

// stop asks aurad to stop through `auractl stop` and requires it to exit 0.
func (d *daemon) stop() {
	b := d.b
	b.Helper()
	d.conn.Close()
	d.ctl(nil, "stop")
	select {
	case <-d.exited:
	case <-time.After(daemonGuard):
		b.Fatalf("%s: aurad did not exit within %v of auractl stop\n%s", d.name, daemonGuard, d.logTail())
	}
	if d.waitErr != nil {
		b.Fatalf("%s: aurad after auractl stop: %v\n%s", d.name, d.waitErr, d.logTail())
	}
}

// ctl runs auractl -o json against the daemon and decodes its output into v
// (nil: output ignored); anything but exit 0 fails the benchmark.
func (d *daemon) ctl(v any, args ...string) {
	b := d.b
	b.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(d.auractl, append([]string{"--datadir", d.dir, "-o", "json"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: auractl %v: %v: %s%s\n%s", d.name, args, err, out.String(), errb.String(), d.logTail())
	}
	if v != nil {
		if err := json.Unmarshal(out.Bytes(), v); err != nil {
			b.Fatalf("%s: auractl %v: %v in %q", d.name, args, err, out.String())
		}
	}
}

// factCount is the number of facts of context id the daemon holds.
func (d *daemon) factCount(ctx context.Context, id string) uint64 {
	d.b.Helper()
	resp, err := contextv1.NewContextServiceClient(d.conn).GetContext(ctx, &contextv1.GetContextRequest{Id: id})
	if err != nil {
		d.b.Fatalf("%s: GetContext %s: %v", d.name, id, err)
	}
	return resp.GetContext().GetFactCount()
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// logTail is the end of the daemon's log, for failure messages.
func (d *daemon) logTail() string {
	const tail = 8 << 10
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return fmt.Sprintf("--- %s log (%s), last %d bytes ---\n%s", d.name, d.logPath, len(b), b)
}

// logErrors are the lines the daemon logged at ERROR: a bug in aurad, never
// bad input.
func (d *daemon) logErrors() []string {
	f, err := os.Open(d.logPath)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "\tERROR\t") {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

func readReadyFile(dir string) (node.ReadyInfo, bool) {
	b, err := os.ReadFile(filepath.Join(dir, node.ReadyFileName))
	if err != nil {
		return node.ReadyInfo{}, false
	}
	var r node.ReadyInfo
	if json.Unmarshal(b, &r) != nil || r.Socket == "" {
		return node.ReadyInfo{}, false
	}
	return r, true
}

// cpuTime is the CPU time (user + system) a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces;
	// the fields after it start with field 3 (state). utime and stime are
	// fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name in %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// procMem is a process's resident memory in bytes: now (VmRSS, of which
// RssAnon is its own and RssFile mapped files: aurad maps its journal) and
// at its peak (VmHWM).
type procMem struct{ rss, anon, file, hwm uint64 }

func residentMem(pid int) (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, err
	}
	var m procMem
	fields := map[string]*uint64{"VmRSS": &m.rss, "RssAnon": &m.anon, "RssFile": &m.file, "VmHWM": &m.hwm}
	for line := range strings.Lines(string(b)) {
		key, val, _ := strings.Cut(line, ":")
		dst := fields[key]
		if dst == nil {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return procMem{}, fmt.Errorf("/proc/%d/status %s: %w", pid, key, err)
		}
		*dst = kb << 10
		delete(fields, key)
	}
	if len(fields) > 0 {
		return procMem{}, fmt.Errorf("/proc/%d/status lacks %d of VmRSS, RssAnon, RssFile, VmHWM", pid, len(fields))
	}
	return m, nil
}

func (m procMem) String() string {
	return fmt.Sprintf("RSS %s (anon %s, file %s), peak %s", mibs(m.rss), mibs(m.anon), mibs(m.file), mibs(m.hwm))
}

func mibs(v uint64) string { return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20)) }

func (d *daemon) cpu() time.Duration {
	d.b.Helper()
	t, err := cpuTime(d.pid())
	if err != nil {
		d.b.Fatal(err)
	}
	return t
}

func (d *daemon) mem() procMem {
	d.b.Helper()
	m, err := residentMem(d.pid())
	if err != nil {
		d.b.Fatal(err)
	}
	return m
}

func syncFacts(b *testing.B) int {
	s := os.Getenv(syncFactsEnv)
	if s == "" {
		return defaultSyncFacts
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number of facts", syncFactsEnv, s)
	}
	return n
}

// appendFacts appends n facts of 200 bytes to ns from syncAppenders clients.
func appendFacts(ctx context.Context, b *testing.B, sock, ns string, n int) error {
	conns := dialN(b, sock, syncConns)
	p := payload(b)
	var (
		next     atomic.Int64
		firstErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	for c := range syncAppenders {
		js := journalv1.NewJournalServiceClient(conns[c%len(conns)])
		wg.Go(func() {
			req := &journalv1.AppendFactRequest{Namespace: ns, TypeId: factType, Payload: p}
			for next.Add(1) <= int64(n) {
				if _, err := js.AppendFact(ctx, req); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	if err := firstErr.Load(); err != nil {
		return fmt.Errorf("appending to %s: %w", ns, *err)
	}
	return nil
}

// bootstrapRun is what one bootstrap measured.
type bootstrapRun struct {
	facts      uint64 // facts B lacked and took in
	took       time.Duration
	bytesIn    uint64 // sync bytes B received from A, all sessions
	factsOut   uint64 // facts A sent B, all sessions
	cpuA, cpuB time.Duration
	memAIdle   procMem // A holding the namespace, restarted and idle, before the sync
	memA, memB procMem // idle after the sync
}

// BenchmarkSyncBootstrap: B, a contact of A that was offline while A wrote
// AURA_BENCH_SYNC_FACTS (default 100,000) facts of 200 bytes in their
// context, starts again (after A restarted) and runs SyncNow with A over that
// context; the timed region ends when the session reports DONE, after which
// B must hold as many facts of the context as A, and still after a restart.
// Reports the rate, the sync bytes B received per fact and the facts A sent
// per fact (over every session between them, not only the timed one), the
// CPU time each daemon used in the timed region (both share the machine's
// cores) and resident memory.
//
// The connection SyncNow opens makes the side with the lower device id start
// a session of its own (internal/sync, New). When that is B, its session
// waits for the timed one; when it is A, it runs beside the timed one. Device
// ids are random, so the sub-benchmarks pick which of two daemons is A to
// measure each case.
func BenchmarkSyncBootstrap(b *testing.B) {
	for _, receiverLower := range []bool{true, false} {
		name := map[bool]string{true: "receiver=lower-id", false: "receiver=higher-id"}[receiverLower]
		b.Run(name, func(b *testing.B) { benchBootstrap(b, receiverLower) })
	}
}

func benchBootstrap(b *testing.B, receiverLower bool) {
	// Only SyncNow is timed: not the build, the daemons or the setup.
	b.StopTimer()
	n := syncFacts(b)
	aurad, auractl := buildSyncBinaries(b)
	var sum bootstrapRun
	var memSum [3]procMem
	for range b.N {
		r := bootstrapOnce(b, n, receiverLower, aurad, auractl)
		sum.facts += r.facts
		sum.took += r.took
		sum.bytesIn += r.bytesIn
		sum.factsOut += r.factsOut
		sum.cpuA += r.cpuA
		sum.cpuB += r.cpuB
		for i, m := range []procMem{r.memAIdle, r.memA, r.memB} {
			memSum[i].rss += m.rss
			memSum[i].anon += m.anon
			memSum[i].hwm += m.hwm
		}
	}
	runs := float64(b.N)
	mib := func(v uint64) float64 { return float64(v) / runs / (1 << 20) }
	b.ReportMetric(float64(sum.facts)/sum.took.Seconds(), "facts/s")
	b.ReportMetric(float64(sum.bytesIn)/float64(sum.facts), "B/fact")
	b.ReportMetric(float64(sum.factsOut)/float64(sum.facts), "sent/fact")
	b.ReportMetric(sum.cpuA.Seconds()/runs, "sender-CPU-s")
	b.ReportMetric(sum.cpuB.Seconds()/runs, "receiver-CPU-s")
	b.ReportMetric(mib(memSum[0].rss), "A-idle-RSS-MiB")
	b.ReportMetric(mib(memSum[1].rss), "A-RSS-MiB")
	b.ReportMetric(mib(memSum[1].anon), "A-anon-MiB")
	b.ReportMetric(mib(memSum[1].hwm), "A-HWM-MiB")
	b.ReportMetric(mib(memSum[2].rss), "B-RSS-MiB")
	b.ReportMetric(mib(memSum[2].anon), "B-anon-MiB")
	b.ReportMetric(mib(memSum[2].hwm), "B-HWM-MiB")
}

func bootstrapOnce(b *testing.B, n int, receiverLower bool, aurad, auractl string) bootstrapRun {
	b.Helper()
	work, err := os.MkdirTemp(os.Getenv(benchDirEnv), "as")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(work) })
	a, bd := newDaemon(b, "1", work, aurad, auractl), newDaemon(b, "2", work, aurad, auractl)
	if (bd.ready.DeviceID < a.ready.DeviceID) != receiverLower {
		a, bd = bd, a
	}
	a.name, bd.name = "A (sender, data dir "+a.dir+")", "B (receiver, data dir "+bd.dir+")"
	defer func() {
		if b.Failed() {
			b.Logf("%s\n%s", a.logTail(), bd.logTail())
		}
	}()

	var inv struct {
		Code string `json:"code"`
	}
	a.ctl(&inv, "invite")
	var acc struct {
		Ceremony struct {
			State     string `json:"state"`
			ContextID string `json:"context_id"`
		} `json:"ceremony"`
	}
	bd.ctl(&acc, "accept", inv.Code)
	if acc.Ceremony.State != "CEREMONY_STATE_COMMITTED" || acc.Ceremony.ContextID == "" {
		b.Fatalf("accept: ceremony %+v", acc.Ceremony)
	}
	ctxID := acc.Ceremony.ContextID
	ns := "context/" + ctxID

	bd.stop()
	ctx := context.Background()
	t0 := time.Now()
	if err := appendFacts(ctx, b, a.ready.Socket, ns, n); err != nil {
		b.Fatal(err)
	}
	fill := time.Since(t0)
	b.Logf("setup: %d facts appended to %s on A by %d clients in %v (%.0f facts/s)",
		n, ns, syncAppenders, fill.Round(time.Millisecond), float64(n)/fill.Seconds())
	// A is restarted before B comes back: its idle memory is then what
	// holding the namespace costs, not what appending it left behind, and
	// its sync timer (30 s by default, from start) is in the same phase on
	// every run.
	time.Sleep(settleIdle)
	memAFilled := a.mem()
	a.stop()
	a.start()
	time.Sleep(settleIdle)
	var r bootstrapRun
	r.memAIdle = a.mem()
	b.Logf("memory: A idle after appending %v; restarted, %v", memAFilled, r.memAIdle)

	bd.start()
	want := a.factCount(ctx, ctxID)
	have := bd.factCount(ctx, ctxID)
	if have >= want {
		b.Fatalf("B holds %d facts of %s before the sync, A %d: nothing to bootstrap", have, ns, want)
	}
	r.facts = want - have

	sctx, cancel := context.WithTimeout(ctx, syncGuard)
	defer cancel()
	cpuA0, cpuB0 := a.cpu(), bd.cpu()
	profiled := profileDaemons(b, a, bd)
	b.StartTimer()
	t0 = time.Now()
	stream, err := syncv1.NewSyncServiceClient(bd.conn).SyncNow(sctx, &syncv1.SyncNowRequest{Peer: a.ready.DeviceID, Namespace: ns})
	if err != nil {
		b.Fatalf("SyncNow: %v", err)
	}
	var last *syncv1.SyncProgress
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatalf("SyncNow stream: %v (last progress %v)", err, last)
		}
		last = m
		if m.GetPhase() == syncv1.SyncPhase_SYNC_PHASE_DONE && r.took == 0 {
			r.took = time.Since(t0)
			b.StopTimer()
			r.cpuA, r.cpuB = a.cpu()-cpuA0, bd.cpu()-cpuB0
		}
	}
	profiled()
	if r.took == 0 {
		b.Fatalf("SyncNow ended without a DONE session: last progress %v", last)
	}
	if got := bd.factCount(ctx, ctxID); got != want {
		b.Fatalf("after the sync B holds %d facts of %s, A %d; last progress %v", got, ns, want, last)
	}
	b.Logf("sync: %d facts in %v (%.0f facts/s); the timed session: mode %s, %d rounds, facts_in %d, bytes_in %d; CPU in the timed region: A (sender) %v = %.0f%% of one core, B (receiver) %v = %.0f%%",
		r.facts, r.took.Round(time.Millisecond), float64(r.facts)/r.took.Seconds(), last.GetMode(), last.GetRounds(),
		last.GetFactsIn(), last.GetBytesIn(),
		r.cpuA.Round(time.Millisecond), 100*r.cpuA.Seconds()/r.took.Seconds(),
		r.cpuB.Round(time.Millisecond), 100*r.cpuB.Seconds()/r.took.Seconds())

	// Sessions other than the timed one (the connection's, a timer's) may
	// still be sending what B now has: let them end before reading the
	// totals and the idle memory.
	time.Sleep(settleIdle)
	r.factsOut = syncTotals(ctx, b, a, bd.ready.DeviceID, ns).GetFactsOut()
	r.bytesIn = syncTotals(ctx, b, bd, a.ready.DeviceID, ns).GetBytesIn()
	r.memA, r.memB = a.mem(), bd.mem()
	b.Logf("memory after the sync: A %v, B %v", r.memA, r.memB)

	// Durable: what B took in is still there after a restart.
	bd.stop()
	bd.start()
	if got := bd.factCount(ctx, ctxID); got != want {
		b.Fatalf("after restarting B it holds %d facts of %s, want %d", got, ns, want)
	}
	a.stop()
	bd.stop()
	for _, d := range []*daemon{a, bd} {
		if lines := d.logErrors(); len(lines) > 0 {
			b.Errorf("%s logged errors:\n%s", d.name, strings.Join(lines, "\n"))
		}
	}
	// The next run's journals need the room.
	os.RemoveAll(work)
	return r
}

// syncTotals is d's GetSyncStatus row for peer and ns: the totals of every
// session since d started. It logs the row, so sessions beyond the timed
// one show.
func syncTotals(ctx context.Context, b *testing.B, d *daemon, peer, ns string) *syncv1.PeerSyncStatus {
	b.Helper()
	resp, err := syncv1.NewSyncServiceClient(d.conn).GetSyncStatus(ctx, &syncv1.GetSyncStatusRequest{Peer: peer, Namespace: ns})
	if err != nil {
		b.Fatalf("%s: GetSyncStatus: %v", d.name, err)
	}
	if len(resp.GetStatuses()) != 1 {
		b.Fatalf("%s: GetSyncStatus for %s in %s: %d rows, want 1", d.name, peer, ns, len(resp.GetStatuses()))
	}
	s := resp.GetStatuses()[0]
	b.Logf("%s: %d sessions with the other (%d failed), the last %s as %s (error %q); facts in/out %d/%d, bytes in/out %d/%d",
		d.name, s.GetSessions(), s.GetFailures(), s.GetLastMode(), s.GetLastRole(), s.GetLastError(),
		s.GetFactsIn(), s.GetFactsOut(), s.GetBytesIn(), s.GetBytesOut())
	return s
}
