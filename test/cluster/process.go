package cluster

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/node"
)

// ProcessOptions shape how an aurad process is run.
type ProcessOptions struct {
	// Wrap runs aurad under another program (strace ...); aurad and its
	// arguments follow Wrap's words.
	Wrap []string
	// Args are extra aurad flags after --datadir.
	Args []string
}

// Process is one aurad process on a data dir. Its log is checked for errors
// and races when the test ends.
type Process struct {
	t    testing.TB
	dir  string
	opts ProcessOptions

	mu      sync.Mutex
	cmd     *exec.Cmd
	log     *syncBuffer
	exited  chan struct{}
	waitErr error
	ready   node.ReadyInfo
}

// StartProcess runs aurad on dir and returns once its ready.json names the
// new process: readiness comes from the file aurad writes once it listens,
// not from polling its API.
func StartProcess(t testing.TB, dir string, opts ProcessOptions) *Process {
	t.Helper()
	p := &Process{t: t, dir: dir, opts: opts}
	p.Start()
	return p
}

// Start runs aurad again on the same data dir (after Stop or Kill).
func (p *Process) Start() {
	p.t.Helper()
	args := append(append([]string{}, p.opts.Wrap...), Aurad(p.t), "--datadir", p.dir)
	args = append(args, p.opts.Args...)
	cmd := exec.Command(args[0], args[1:]...)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "HOME="+p.dir)
	// Its own process group, so a kill reaches aurad under a wrapper too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.log, p.exited = cmd, log, exited
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	p.t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logProblems(p.t, "aurad "+p.dir, log.String())
	})
	// Under a wrapper the pid in ready.json is aurad's, a child of cmd.
	deadline := time.Now().Add(hangGuard)
	for {
		if r, ok := readReady(p.dir); ok && (r.PID == cmd.Process.Pid || len(p.opts.Wrap) > 0 && p.isChild(r.PID)) {
			p.ready = r
			return
		}
		select {
		case <-exited:
			p.t.Fatalf("aurad exited during start: %v\n%s", p.waitErr, log)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("aurad not ready after %s:\n%s", hangGuard, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// isChild reports whether pid belongs to the process group of the wrapper.
func (p *Process) isChild(pid int) bool {
	pgid, err := syscall.Getpgid(pid)
	return err == nil && pgid == p.cmd.Process.Pid
}

// Ready is what the running aurad wrote to ready.json.
func (p *Process) Ready() node.ReadyInfo { return p.ready }

// Dir is the data dir.
func (p *Process) Dir() string { return p.dir }

// Pid is the started command's pid (the wrapper's, under Wrap).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Log is what aurad wrote so far.
func (p *Process) Log() string { return p.log.String() }

// Signal sends sig to aurad (and its wrapper).
func (p *Process) Signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Kill is kill -9 on aurad: no shutdown of any kind runs.
func (p *Process) Kill() {
	p.t.Helper()
	p.Signal(syscall.SIGKILL)
	p.wait()
}

// Stop asks aurad to stop through auractl and checks that it exits 0.
func (p *Process) Stop() {
	p.t.Helper()
	if out, code := Ctl(p.t, p.dir, "stop"); code != 0 {
		p.t.Fatalf("auractl stop: exit %d: %s", code, out)
	}
	if code := p.ExitCode(); code != 0 {
		p.t.Fatalf("aurad exited %d after stop:\n%s", code, p.Log())
	}
}

func (p *Process) wait() {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(hangGuard):
		p.t.Fatalf("aurad did not exit within %s:\n%s", hangGuard, p.Log())
	}
}

// ExitCode waits for the process to exit and returns its exit code (-1 when
// a signal ended it).
func (p *Process) ExitCode() int {
	p.t.Helper()
	p.wait()
	p.mu.Lock()
	err := p.waitErr
	p.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return 0
}

// syncBuffer is a log buffer written by a process's pipes and read by tests.
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
