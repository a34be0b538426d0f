package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A mistake in what aurad was told exits 2 wherever it is: an unknown flag, a
// flag value that does not parse, one that parses but is out of range, and
// the same in the environment or the config file. None of these starts a
// daemon: each fails before.
func TestUsageErrorsExit2(t *testing.T) {
	dir := shortTempDir(t)
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[log]\nlevle = 'x'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"AURA_DATADIR": dir}
	with := func(k, v string) map[string]string {
		e := map[string]string{k: v}
		for bk, bv := range base {
			e[bk] = bv
		}
		return e
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		msg  string
	}{
		{"unknown flag", base, []string{"--bogus"}, "unknown flag: --bogus"},
		{"flag value does not parse", base, []string{"--journal-max-batch", "x"}, `invalid argument "x"`},
		{"flag value out of range", base, []string{"--log-level", "loud"}, `log.level = "loud"`},
		{"world-readable socket flag", base, []string{"--socket-mode", "0666"}, "socket_mode = 0666"},
		{"bad environment value", with("AURAD_SHUTDOWN_TIMEOUT", "soon"), nil, "AURAD_SHUTDOWN_TIMEOUT"},
		{"unknown key in the file", base, []string{"--config", bad}, `unknown key "log.levle"`},
		{"missing --config file", base, []string{"--config", filepath.Join(dir, "nope.toml")}, "no such file"},
		{"missing AURAD_CONFIG file", with("AURAD_CONFIG", filepath.Join(dir, "nope.toml")), nil, "AURAD_CONFIG"},
		{"config dump: bad value", base, []string{"config", "dump", "--log-level", "loud"}, `log.level = "loud"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runAurad(tc.env, tc.args...)
			if code != exitUsage || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and one line with %q", code, out, errOut, exitUsage, tc.msg)
			}
		})
	}
}
