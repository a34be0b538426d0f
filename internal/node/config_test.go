package node

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/aura-p2p/aura/internal/core"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func load(t *testing.T, args []string, e map[string]string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("aurad", pflag.ContinueOnError)
	cf := NewConfigFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := cf.Load(env(e))
	return cfg, err
}

func TestConfigPrecedenceIsPerField(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, ConfigFileName)
	os.WriteFile(file, []byte("[log]\nlevel = 'warn'\nformat = 'json'\n[journal]\nmax_batch_facts = 7\n"), 0o600)
	cfg, err := load(t,
		[]string{"--datadir", dir, "--journal-max-batch", "9"},
		map[string]string{"AURAD_LOG_LEVEL": "debug", "HOME": "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	// file < env < flag, field by field; untouched fields keep the default.
	if cfg.Log.Format != "json" || cfg.Log.Level != "debug" || cfg.Journal.MaxBatchFacts != 9 {
		t.Fatalf("precedence: %+v", cfg)
	}
	if time.Duration(cfg.ShutdownTimeout) != 4*time.Second || cfg.Socket != filepath.Join(dir, core.SocketName) {
		t.Fatalf("defaults lost: %+v", cfg)
	}
}

func TestConfigDataDirSources(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"home default", nil, map[string]string{"HOME": "/h"}, "/h/.local/share/aura"},
		{"xdg", nil, map[string]string{"HOME": "/h", "XDG_DATA_HOME": "/x"}, "/x/aura"},
		{"AURA_DATADIR", nil, map[string]string{"HOME": "/h", "AURA_DATADIR": "/a"}, "/a"},
		{"AURAD_DATADIR wins over AURA_DATADIR", nil, map[string]string{"AURA_DATADIR": "/a", "AURAD_DATADIR": "/b"}, "/b"},
		{"flag wins", []string{"--datadir", "/f"}, map[string]string{"AURAD_DATADIR": "/b"}, "/f"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.DataDir != tc.want || cfg.Socket != filepath.Join(tc.want, core.SocketName) {
				t.Fatalf("data dir %q socket %q", cfg.DataDir, cfg.Socket)
			}
		})
	}
}

func TestConfigRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantMsg string
	}{
		{"unknown key", []string{"--config", write("a.toml", "version = 1\n[log]\nlevle = 'x'\n")}, nil, `unknown key "log.levle"`},
		{"bad toml", []string{"--config", write("b.toml", "version = \n")}, nil, "line 1"},
		{"missing explicit file", []string{"--config", filepath.Join(dir, "nope.toml")}, nil, "no such file"},
		{"newer version", []string{"--config", write("c.toml", "version = 2\n")}, nil, "version = 2"},
		{"bad level in env", nil, map[string]string{"AURAD_LOG_LEVEL": "loud"}, `log.level = "loud"`},
		{"world socket", []string{"--socket-mode", "0666"}, nil, "socket_mode = 0666"},
		{"tcp without tls", []string{"--control-tcp-listen", "127.0.0.1:0"}, nil, "needs control.tls_cert_file"},
		{"pprof without a metrics listener", []string{"--metrics-pprof=true"}, nil, "metrics.pprof needs metrics.listen"},
		{"bad duration", nil, map[string]string{"AURAD_SHUTDOWN_TIMEOUT": "soon"}, "AURAD_SHUTDOWN_TIMEOUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{"AURA_DATADIR": dir}
			for k, v := range tc.env {
				e[k] = v
			}
			_, err := load(t, tc.args, e)
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) || !errors.Is(err, core.ErrInvalidArgument) {
				t.Fatalf("got %v, want an invalid-argument error mentioning %q", err, tc.wantMsg)
			}
		})
	}
}

// The shipped sample is exactly what `aurad config default` prints, and it
// decodes back to the defaults.
func TestSampleConfigMatchesDefaults(t *testing.T) {
	sample, err := os.ReadFile("../../deploy/aurad.toml.sample")
	if err != nil {
		t.Fatal(err)
	}
	want, err := DefaultConfig().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sample, want) {
		t.Fatal("deploy/aurad.toml.sample differs from `aurad config default`; regenerate it with `make sample-conf`")
	}
	var back Config
	if err := decodeConfig(sample, &back); err != nil || !reflect.DeepEqual(back, DefaultConfig()) {
		t.Fatalf("sample decodes to %+v, %v", back, err)
	}
}

// AURAD_CONFIG names the file as --config does (the systemd unit sets it):
// below --config, above <datadir>/aurad.toml, and it must exist.
func TestConfigFileFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	write := func(name, level string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("[log]\nlevel = '"+level+"'\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inDataDir := write(ConfigFileName, "warn")
	fromEnv := write("env.toml", "error")
	fromFlag := write("flag.toml", "debug")
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantFile  string
		wantLevel string
		wantErr   string
	}{
		{"data dir file", nil, nil, inDataDir, "warn", ""},
		{"AURAD_CONFIG beats the data dir's", nil, map[string]string{EnvConfig: fromEnv}, fromEnv, "error", ""},
		{"--config beats AURAD_CONFIG", []string{"--config", fromFlag}, map[string]string{EnvConfig: fromEnv}, fromFlag, "debug", ""},
		{"env value beats the file it names", nil, map[string]string{EnvConfig: fromEnv, "AURAD_LOG_LEVEL": "info"}, fromEnv, "info", ""},
		{"missing AURAD_CONFIG file", nil, map[string]string{EnvConfig: filepath.Join(dir, "nope.toml")}, "", "", EnvConfig + ": open "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{"AURA_DATADIR": dir}
			for k, v := range tc.env {
				e[k] = v
			}
			fs := pflag.NewFlagSet("aurad", pflag.ContinueOnError)
			cf := NewConfigFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, file, err := cf.Load(env(e))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, core.ErrInvalidArgument) {
					t.Fatalf("got %v, want an invalid-argument error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if file != tc.wantFile || cfg.Log.Level != tc.wantLevel {
				t.Fatalf("file %q level %q, want %q %q", file, cfg.Log.Level, tc.wantFile, tc.wantLevel)
			}
		})
	}
}
