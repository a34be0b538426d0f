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

	"github.com/spf13/cobra"
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
	// The system daemon's socket may exist on the machine running the
	// tests; they look for it where none is, unless they ask otherwise.
	system := env[testSystemSocket]
	if system == "" {
		system = "/nonexistent/run/aurad/aurad.sock"
	}
	a := &app{in: stdin, out: &out, err: &errw, getenv: func(k string) string { return env[k] }, systemSocket: system}
	code := runApp(ctx, a, args)
	return result{out: out.String(), err: errw.String(), code: code}
}

// testSystemSocket in a test's env is where that run looks for the system
// daemon's socket; no real variable has this name.
const testSystemSocket = "test: system socket"

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
			if want := "Error: aurad is not running at " + sock + "\n"; r.err != want {
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
	if r.code != ExitUnavailable || r.err != "Error: aurad is not running at "+sock+"\n" {
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
		// aurad's own variables, as the systemd unit sets them.
		{"AURAD_SOCKET", map[string]string{"AURAD_SOCKET": p("daemon.sock"), "AURA_DATADIR": p("dd")}, nil, p("daemon.sock")},
		{"AURACTL_SOCKET beats AURAD_SOCKET", map[string]string{"AURACTL_SOCKET": p("env.sock"), "AURAD_SOCKET": p("daemon.sock")}, nil, p("env.sock")},
		{"datadir flag beats AURAD_SOCKET", map[string]string{"AURAD_SOCKET": p("daemon.sock")}, []string{"--datadir", p("flagdd")}, p("flagdd/aurad.sock")},
		{"AURAD_DATADIR beats AURA_DATADIR", map[string]string{"AURAD_DATADIR": p("daemondd"), "AURA_DATADIR": p("dd")}, nil, p("daemondd/aurad.sock")},
		// No system daemon either: the answer names the user's own socket.
		{"system socket missing too", map[string]string{"HOME": p("home"), testSystemSocket: p("run/aurad.sock")}, nil, p("home/.local/share/aura/aurad.sock")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCtl(t, tt.env, nil, append(tt.args, "status")...)
			if want := "Error: aurad is not running at " + tt.want + "\n"; r.err != want {
				t.Errorf("stderr %q, want %q", r.err, want)
			}
		})
	}
}

func TestRelativeSocketIsMadeAbsolute(t *testing.T) {
	r := runCtl(t, nil, nil, "--socket", "no/such/aurad.sock", "status")
	wd, _ := os.Getwd()
	if want := "Error: aurad is not running at " + filepath.Join(wd, "no/such/aurad.sock") + "\n"; r.err != want {
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

// With no socket of the user's own, auractl finds the system daemon's, where
// the systemd unit puts it; the user's own wins when it exists, and an
// explicit choice is never second-guessed.
func TestSystemSocketFallback(t *testing.T) {
	d := startDaemon(t) // the "system" daemon
	home := shortTempDir(t)
	own := filepath.Join(home, ".local/share/aura/aurad.sock")
	env := map[string]string{"HOME": home, testSystemSocket: d.socket}

	r := runCtl(t, env, nil, "status")
	if r.code != ExitOK || !strings.Contains(r.out, "v9.9.9") {
		t.Fatalf("no own socket: exit %d, stderr %q; want the system daemon", r.code, r.err)
	}
	r = runCtl(t, env, nil, "--datadir", filepath.Dir(own), "status")
	if want := "Error: aurad is not running at " + own + "\n"; r.code != ExitUnavailable || r.err != want {
		t.Errorf("explicit --datadir: exit %d, stderr %q, want %q", r.code, r.err, want)
	}
	// A stale socket of the user's own is theirs: "not running", not a
	// silent switch to another daemon.
	if err := os.MkdirAll(filepath.Dir(own), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", own)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	r = runCtl(t, env, nil, "status")
	if want := "Error: aurad is not running at " + own + "\n"; r.code != ExitUnavailable || r.err != want {
		t.Errorf("own stale socket: exit %d, stderr %q, want %q", r.code, r.err, want)
	}
}

// The root help gives an overview of every command, the JSON mapping and
// where the socket is looked for; a new command without a line there fails.
func TestRootHelpDescribesEveryCommand(t *testing.T) {
	r := runCtl(t, nil, nil, "--help")
	if r.code != ExitOK {
		t.Fatalf("exit %d", r.code)
	}
	overview, _, ok := strings.Cut(r.out, "Usage:")
	if !ok {
		t.Fatalf("no usage section:\n%s", r.out)
	}
	root := newRootCmd(&app{getenv: func(string) string { return "" }})
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" {
			continue
		}
		if !strings.Contains(overview, "\n  "+c.Name()+" ") {
			t.Errorf("the overview does not describe %q", c.Name())
		}
	}
	for _, want := range []string{"--hex", "base64", "64-bit integers as strings", "enums by name", "zero values included", envDaemonSocket, systemSocket, "Exit codes:"} {
		if !strings.Contains(overview, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// Completion scripts come from cobra's generator for each shell; each names
// the program it completes.
func TestCompletionScripts(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash":       "__start_auractl",
		"zsh":        "#compdef auractl",
		"fish":       "complete -c auractl",
		"powershell": "Register-ArgumentCompleter",
	} {
		t.Run(shell, func(t *testing.T) {
			r := runCtl(t, nil, nil, "completion", shell)
			if r.code != ExitOK || !strings.Contains(r.out, marker) || r.err != "" {
				t.Errorf("exit %d, stderr %q, output lacks %q", r.code, r.err, marker)
			}
		})
	}
	if r := runCtl(t, nil, nil, "completion", "tcsh"); r.code != ExitUsage {
		t.Errorf("unknown shell: exit %d, want %d", r.code, ExitUsage)
	}
}

// One page per command, generated from the tree: a new command gets its page
// without anyone writing it.
func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	r := runCtl(t, nil, nil, "man", dir)
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	want := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c.HasParent() {
			return
		}
		want[strings.ReplaceAll(c.CommandPath(), " ", "-")+".1"] = true
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(&app{getenv: func(string) string { return "" }}))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range entries {
		got[e.Name()] = true
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), ".TH \"AURACTL") || !strings.Contains(string(b), ".SH NAME") {
			t.Errorf("%s is not a man page:\n%.200s", e.Name(), b)
		}
	}
	for name := range want {
		if !got[name] {
			t.Errorf("no page %s", name)
		}
	}
	for name := range got {
		if !want[name] {
			t.Errorf("page %s for no command", name)
		}
	}
	if len(got) < 30 || !got["auractl-peer-ping.1"] || got["auractl-man.1"] {
		t.Errorf("%d pages: %v", len(got), got)
	}
	root, _ := os.ReadFile(filepath.Join(dir, "auractl.1"))
	if !strings.Contains(string(root), "Exit codes") {
		t.Errorf("the root page lacks the help's text")
	}
}
