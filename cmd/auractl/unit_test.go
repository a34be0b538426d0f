package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unitSettings reads the Environment= assignments and the *Directory= lines
// of deploy/aurad.service's [Service] section (the unit quotes nothing).
func unitSettings(t *testing.T) (env, dirs map[string]string) {
	t.Helper()
	b, err := os.ReadFile("../../deploy/aurad.service")
	if err != nil {
		t.Fatal(err)
	}
	env, dirs = map[string]string{}, map[string]string{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section != "[Service]" || strings.HasPrefix(line, "#") {
			continue
		}
		switch key {
		case "Environment":
			for _, kv := range strings.Fields(value) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		case "RuntimeDirectory", "StateDirectory":
			dirs[key] = value
		}
	}
	return env, dirs
}

// auractl finds the daemon the unit starts: the socket it falls back to is
// the unit's, and under the unit's own environment it picks the same one.
func TestSystemSocketIsTheUnits(t *testing.T) {
	env, dirs := unitSettings(t)
	if env[envDaemonSocket] != systemSocket {
		t.Fatalf("the unit sets %s=%q; auractl falls back to %q", envDaemonSocket, env[envDaemonSocket], systemSocket)
	}
	if want := filepath.Join("/run", dirs["RuntimeDirectory"]); filepath.Dir(systemSocket) != want {
		t.Fatalf("auractl's system socket %s is not in RuntimeDirectory= %s", systemSocket, want)
	}
	// With exactly the unit's environment (an operator who exported it, or
	// a script run under the unit), and with no environment at all but the
	// unit's socket present, auractl talks to the same socket.
	if _, err := os.Stat(systemSocket); err == nil {
		t.Skipf("%s exists on this machine; the answer would depend on its daemon", systemSocket)
	}
	r := runCtl(t, env, nil, "status")
	if want := "Error: aurad is not running at " + systemSocket + "\n"; r.code != ExitUnavailable || r.err != want {
		t.Errorf("unit's environment: exit %d, stderr %q, want %q", r.code, r.err, want)
	}
	dataOnly := map[string]string{envDaemonDataDir: env[envDaemonDataDir]}
	r = runCtl(t, dataOnly, nil, "status")
	if want := "Error: aurad is not running at " + filepath.Join(env[envDaemonDataDir], "aurad.sock") + "\n"; r.err != want {
		t.Errorf("%s alone: stderr %q, want %q", envDaemonDataDir, r.err, want)
	}
}
