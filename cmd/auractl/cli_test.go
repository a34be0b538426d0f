package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// result is one in-process auractl run.
type result struct {
	out, err string
	code     int
}

// runCtl runs auractl with an environment of exactly env, so the developer's
// own AURACTL_SOCKET or data dir never leaks into a test.
func runCtl(t *testing.T, env map[string]string, stdin io.Reader, args ...string) result {
	t.Helper()
	return runCtlContext(context.Background(), env, stdin, args...)
}

func runCtlContext(ctx context.Context, env map[string]string, stdin io.Reader, args ...string) result {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	if env == nil {
		env = map[string]string{"HOME": "/nonexistent-home"}
	}
	var out, errw bytes.Buffer
	code := run(ctx, args, stdin, &out, &errw, func(k string) string { return env[k] })
	return result{out: out.String(), err: errw.String(), code: code}
}

// shortTempDir keeps unix socket paths under the ~100 byte sun_path limit,
// which t.TempDir's long names can exceed.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "actl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestNotRunning(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "aurad.sock")
	for _, args := range [][]string{
		{"status"},
		{"fact", "get", "ab"},
		{"fact", "append", "--type", "t", "--payload", "x"},
		{"fact", "watch"},
		{"crdt", "counter", "incr", "c"},
		{"crdt", "watch", "c"},
		{"stop"},
		{"-o", "json", "status"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCtl(t, nil, nil, append([]string{"--socket", sock}, args...)...)
			if r.code != ExitUnavailable {
				t.Errorf("exit %d, want %d", r.code, ExitUnavailable)
			}
			if want := "aurad is not running at " + sock + "\n"; r.err != want {
				t.Errorf("stderr %q, want %q", r.err, want)
			}
			if r.out != "" {
				t.Errorf("stdout %q, want nothing", r.out)
			}
		})
	}
}

// A socket file left behind by a dead daemon refuses connections; that is
// "not running" too, not a transport error.
func TestNotRunningStaleSocket(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "aurad.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("socket file should remain: %v", err)
	}
	r := runCtl(t, nil, nil, "--socket", sock, "status")
	if r.code != ExitUnavailable || r.err != "aurad is not running at "+sock+"\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.err)
	}
}

// The socket comes from --socket, else an explicit --datadir, else
// AURACTL_SOCKET, else the default data dir (AURA_DATADIR, XDG, HOME).
func TestSocketResolution(t *testing.T) {
	dir := shortTempDir(t)
	p := func(s string) string { return filepath.Join(dir, s) }
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"flag", map[string]string{"AURACTL_SOCKET": p("env.sock")}, []string{"--socket", p("flag.sock")}, p("flag.sock")},
		{"env socket", map[string]string{"AURACTL_SOCKET": p("env.sock"), "AURA_DATADIR": p("dd")}, nil, p("env.sock")},
		{"datadir flag beats env socket", map[string]string{"AURACTL_SOCKET": p("env.sock")}, []string{"--datadir", p("flagdd")}, p("flagdd/aurad.sock")},
		{"AURA_DATADIR", map[string]string{"AURA_DATADIR": p("dd")}, nil, p("dd/aurad.sock")},
		{"XDG", map[string]string{"XDG_DATA_HOME": p("xdg")}, nil, p("xdg/aura/aurad.sock")},
		{"HOME", map[string]string{"HOME": p("home")}, nil, p("home/.local/share/aura/aurad.sock")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCtl(t, tt.env, nil, append(tt.args, "status")...)
			if want := "aurad is not running at " + tt.want + "\n"; r.err != want {
				t.Errorf("stderr %q, want %q", r.err, want)
			}
		})
	}
}

func TestRelativeSocketIsMadeAbsolute(t *testing.T) {
	r := runCtl(t, nil, nil, "--socket", "no/such/aurad.sock", "status")
	wd, _ := os.Getwd()
	if want := "aurad is not running at " + filepath.Join(wd, "no/such/aurad.sock") + "\n"; r.err != want {
		t.Errorf("stderr %q, want %q", r.err, want)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // substring of the error line
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"fact", "bogus"}, `unknown command "bogus" for "auractl fact"`},
		{[]string{"crdt", "counter", "bogus", "x"}, `unknown command "bogus"`},
		{[]string{"status", "extra"}, "auractl status: accepts 0 arg(s), received 1"},
		{[]string{"fact", "get"}, "auractl fact get: accepts 1 arg(s), received 0"},
		{[]string{"fact", "get", "a", "b"}, "accepts 1 arg(s), received 2"},
		{[]string{"fact", "append", "--payload", "x"}, `required flag(s) "type" not set`},
		{[]string{"fact", "append", "--type", "t"}, `required flag(s) "payload" not set`},
		{[]string{"fact", "append", "--type", "t", "--payload", "@"}, "--payload @ needs a file name"},
		{[]string{"fact", "list", "--limit", "-1"}, `invalid argument "-1" for "--limit"`},
		{[]string{"fact", "watch", "--after", "1", "--from-now"}, "after from-now"},
		{[]string{"crdt", "counter", "incr"}, "accepts 1 arg(s), received 0"},
		{[]string{"crdt", "counter", "incr", "c", "--by", "0"}, "--by must not be 0"},
		{[]string{"crdt", "counter", "decr", "c", "--by", "-9223372036854775808"}, "cannot be negated"},
		{[]string{"crdt", "counter", "incr", "c", "--by", "x"}, `invalid argument "x" for "--by"`},
		{[]string{"crdt", "set", "add", "s"}, "accepts 2 arg(s), received 1"},
		{[]string{"crdt", "map", "set", "m", "k"}, "accepts 3 arg(s), received 2"},
		{[]string{"crdt", "map", "get", "m", "k", "extra"}, "accepts between 1 and 2 arg(s), received 3"},
		{[]string{"crdt", "register", "set", "r", "\xff"}, "argument 2 is not valid UTF-8"},
		{[]string{"--bogus", "status"}, "unknown flag: --bogus"},
		{[]string{"-o", "yaml", "status"}, `invalid --output "yaml"`},
		{[]string{"--timeout", "-1s", "status"}, "invalid --timeout"},
		{[]string{"--timeout", "soon", "status"}, `invalid argument "soon" for "--timeout"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			// The socket would answer "not running"; usage must be decided first.
			r := runCtl(t, nil, nil, append([]string{"--socket", "/nonexistent/aurad.sock"}, tt.args...)...)
			if r.code != ExitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, ExitUsage, r.err)
			}
			if strings.Count(r.err, "\n") != 1 || !strings.HasPrefix(r.err, "Error: ") {
				t.Errorf("stderr is not one error line: %q", r.err)
			}
			if !strings.Contains(r.err, tt.want) {
				t.Errorf("stderr %q lacks %q", r.err, tt.want)
			}
			if r.out != "" {
				t.Errorf("stdout %q, want nothing", r.out)
			}
		})
	}
}

func TestHelpAndCompletion(t *testing.T) {
	r := runCtl(t, nil, nil, "--help")
	if r.code != ExitOK || !strings.Contains(r.out, "Exit codes:") || !strings.Contains(r.out, "completion") {
		t.Errorf("--help: exit %d, out %q", r.code, r.out)
	}
	r = runCtl(t, nil, nil, "fact")
	if r.code != ExitOK || !strings.Contains(r.out, "append") {
		t.Errorf("bare noun: exit %d, out %q", r.code, r.out)
	}
	r = runCtl(t, nil, nil, "completion", "bash")
	if r.code != ExitOK || !strings.Contains(r.out, "auractl") {
		t.Errorf("completion bash: exit %d, err %q", r.code, r.err)
	}
}

func TestVersionWithoutDaemon(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "aurad.sock")
	r := runCtl(t, nil, nil, "--socket", sock, "version")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	if !strings.HasPrefix(r.out, "client:") || strings.Contains(r.out, "daemon") {
		t.Errorf("stdout %q", r.out)
	}
	if want := "daemon not reachable: aurad is not running at " + sock + "\n"; r.err != want {
		t.Errorf("stderr %q, want %q", r.err, want)
	}
	r = runCtl(t, nil, nil, "--socket", sock, "-o", "json", "version")
	if r.code != ExitOK || !strings.Contains(r.out, `"client_version"`) {
		t.Errorf("json: exit %d, out %q", r.code, r.out)
	}
}
