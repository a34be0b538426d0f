package main

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/node"
)

// unit is what deploy/aurad.service tells aurad: its environment, its
// command line and the directories systemd makes for it.
type unit struct {
	env       map[string]string
	envOrder  []string
	execStart []string
	dirs      map[string]string // StateDirectory etc.: name under /var/lib, /run, /etc
}

// readUnit parses the [Service] section's Environment=, ExecStart= and
// *Directory= lines, with systemd's quoting for the values used there.
func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{env: map[string]string{}, dirs: map[string]string{}}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section != "[Service]" {
			continue
		}
		switch key {
		case "Environment":
			for _, kv := range unitWords(t, value) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Environment=%s: %q is not NAME=VALUE", value, kv)
				}
				if _, dup := u.env[k]; !dup {
					u.envOrder = append(u.envOrder, k)
				}
				u.env[k] = v
			}
		case "ExecStart":
			// Prefixes such as "-" or "@" change how systemd runs the
			// command; this unit uses none, and the test would miss them.
			if strings.ContainsAny(value[:1], "-@:+!") {
				t.Fatalf("ExecStart=%s: prefixes are not understood here", value)
			}
			u.execStart = unitWords(t, value)
		case "StateDirectory", "RuntimeDirectory", "ConfigurationDirectory":
			u.dirs[key] = value
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// unitWords splits a value into words at spaces, honouring double quotes.
func unitWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				t.Fatalf("unterminated quote in %q", s)
			}
			w, err := strconv.Unquote(s[:end+2])
			if err != nil {
				t.Fatal(err)
			}
			words = append(words, w)
			s = s[end+2:]
			continue
		}
		w, rest, _ := strings.Cut(s, " ")
		words = append(words, w)
		s = rest
	}
	return words
}

// loadAsUnit loads the config the way aurad started by the unit would: the
// unit's command line parsed by aurad's flags, and exactly the unit's
// environment, each path in it moved under root (so the test needs no /etc).
func loadAsUnit(t *testing.T, u unit, root string) (node.Config, string, error) {
	t.Helper()
	if len(u.execStart) == 0 || filepath.Base(u.execStart[0]) != "aurad" {
		t.Fatalf("ExecStart %q does not run aurad", u.execStart)
	}
	env := map[string]string{}
	for k, v := range u.env {
		if root != "" && filepath.IsAbs(v) {
			v = filepath.Join(root, v)
		}
		env[k] = v
	}
	fs := pflag.NewFlagSet("aurad", pflag.ContinueOnError)
	cf := node.NewConfigFlags(fs)
	if err := fs.Parse(u.execStart[1:]); err != nil {
		t.Fatalf("ExecStart arguments: %v", err)
	}
	return cf.Load(func(k string) string { return env[k] })
}

// The unit and the daemon agree: the config file the unit's comment points
// at is the one aurad reads, the directories systemd makes are the ones aurad
// uses, and every variable the unit sets changes what aurad does.
func TestSystemdUnitMatchesConfigLoader(t *testing.T) {
	u := readUnit(t, "../../deploy/aurad.service")
	configFile := u.env[node.EnvConfig]
	if configFile == "" {
		t.Fatalf("the unit sets no %s", node.EnvConfig)
	}
	if want := filepath.Join("/etc", u.dirs["ConfigurationDirectory"], node.ConfigFileName); configFile != want {
		t.Fatalf("%s=%s, but ConfigurationDirectory= makes %s", node.EnvConfig, configFile, filepath.Dir(want))
	}

	// Exactly the unit's environment: the file is read from where the unit
	// says, so where it is missing (as here) aurad refuses to start.
	if _, err := os.Stat(configFile); errors.Is(err, os.ErrNotExist) {
		_, _, err := loadAsUnit(t, u, "")
		if err == nil || !strings.Contains(err.Error(), configFile) {
			t.Fatalf("with no %s, load gave %v; want an error naming it", configFile, err)
		}
	}

	// Installed as the unit's header says: the sample at the config path.
	root := t.TempDir()
	sample, err := os.ReadFile("../../deploy/aurad.toml.sample")
	if err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(root, configFile)
	if err := os.MkdirAll(filepath.Dir(installed), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(installed, sample, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, file, err := loadAsUnit(t, u, root)
	if err != nil {
		t.Fatal(err)
	}
	if file != installed {
		t.Errorf("read config %q, want %q", file, installed)
	}
	if want := filepath.Join(root, "/var/lib", u.dirs["StateDirectory"]); cfg.DataDir != want {
		t.Errorf("data dir %s, but StateDirectory= makes %s", cfg.DataDir, want)
	}
	if want := filepath.Join(root, "/run", u.dirs["RuntimeDirectory"], core.SocketName); cfg.Socket != want {
		t.Errorf("socket %s, want %s in RuntimeDirectory=", cfg.Socket, want)
	}
	if cfg.SocketMode != 0o660 || cfg.Log.Format != "json" {
		t.Errorf("socket mode %04o, log format %q: the unit's settings were not applied", uint32(cfg.SocketMode), cfg.Log.Format)
	}

	// Every variable matters: without it aurad reads another file or ends
	// up with another config. A name aurad does not know (a typo, a renamed
	// setting) would change nothing and fail here.
	for _, k := range u.envOrder {
		t.Run(k, func(t *testing.T) {
			without := unit{env: map[string]string{}, execStart: u.execStart}
			for kk, v := range u.env {
				if kk != k {
					without.env[kk] = v
				}
			}
			if k == node.EnvConfig {
				// The data dir has no aurad.toml: defaults, no file.
				_, f, err := loadAsUnit(t, without, root)
				if err != nil || f == file {
					t.Fatalf("without %s: file %q, err %v", k, f, err)
				}
				return
			}
			c, _, err := loadAsUnit(t, without, root)
			if err == nil && reflect.DeepEqual(c, cfg) {
				t.Fatalf("%s=%s has no effect on aurad's config", k, u.env[k])
			}
		})
	}
}
