package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenCreateCommand(t *testing.T) {
	dir := shortTempDir(t)
	path := filepath.Join(dir, "tokens")
	create := func(args ...string) (string, string, int) {
		return runAurad(nil, append([]string{"token", "create", "--datadir", dir, "--control-token-file", path}, args...)...)
	}

	out, errOut, code := create("--level", "write", "--name", "ci")
	tok := strings.TrimSuffix(out, "\n")
	if code != exitOK || len(tok) != 43 || strings.Contains(tok, "\n") || !strings.Contains(errOut, `added write token "ci"`) {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), tok+" write ci\n") {
		t.Fatalf("file lacks the token: %q", b)
	}
	// The default level is the least one.
	out, _, code = create()
	if code != exitOK || !strings.Contains(mustRead(t, path), strings.TrimSpace(out)+" read read-2\n") {
		t.Fatalf("default level: %d %q", code, mustRead(t, path))
	}

	before := mustRead(t, path)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown level", []string{"--level", "root"}, exitUsage, `unknown level "root"`},
		{"name taken", []string{"--name", "ci"}, exitFailed, `already has a token named "ci"`},
		{"argument", []string{"extra"}, exitUsage, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := create(tc.args...)
			if code != tc.code || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("got %d %q %q", code, out, errOut)
			}
		})
	}
	if mustRead(t, path) != before {
		t.Fatal("a refused create changed the file")
	}
	if _, errOut, code := runAurad(nil, "token", "create", "--datadir", dir); code != exitUsage || !strings.Contains(errOut, "control.token_file") {
		t.Fatalf("no token file configured: %d %q", code, errOut)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
