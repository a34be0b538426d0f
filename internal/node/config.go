package node

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/multiformats/go-multiaddr"
	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"

	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/core"
)

// ConfigVersion is the config file format this binary reads.
const ConfigVersion = 1

// ConfigFileName is looked for in the data dir when neither --config nor
// AURAD_CONFIG names a file.
const ConfigFileName = "aurad.toml"

// EnvConfig names the config file, below --config. Like --config, it names a
// file that must exist: a mistyped path never runs on defaults.
const EnvConfig = "AURAD_CONFIG"

// Config is everything aurad can be told. Each field is decided on its own:
// default < TOML file < AURAD_* environment < explicitly set flag.
type Config struct {
	Version         int           `toml:"version" comment:"Format of this file; this aurad reads version 1."`
	DataDir         string        `toml:"data_dir" comment:"Keys, journal and socket live here. Empty: $AURA_DATADIR, else $XDG_DATA_HOME/aura, else ~/.local/share/aura."`
	Socket          string        `toml:"socket" comment:"Control socket for auractl and gRPC clients. Empty: <data_dir>/aurad.sock."`
	SocketMode      FileMode      `toml:"socket_mode" comment:"Permissions of the control socket; never world-accessible. 0660 lets a group in (systemd)."`
	ShutdownTimeout Duration      `toml:"shutdown_timeout" comment:"How long a graceful shutdown may take before in-flight calls are cut off."`
	Log             LogConfig     `toml:"log"`
	Control         ControlConfig `toml:"control"`
	Journal         JournalConfig `toml:"journal"`
	P2P             P2PConfig     `toml:"p2p"`
	Budget          BudgetConfig  `toml:"budget"`
	Metrics         MetricsConfig `toml:"metrics"`
	Sync            SyncConfig    `toml:"sync"`
}

// SyncConfig configures anti-entropy reconciliation.
type SyncConfig struct {
	Interval Duration `toml:"interval" comment:"Reconcile with a random peer this often (besides on every connection and after out-of-order announcements). 0s: only then and on demand."`
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	Listen string `toml:"listen" comment:"host:port serving Prometheus /metrics and /healthz over plain, unauthenticated HTTP; keep it on loopback or a private network. Empty: off."`
	Pprof  bool   `toml:"pprof" comment:"Also serve Go's profiler under /debug/pprof/ on that listener (CPU, heap, goroutines), for finding where the daemon spends its time. It shows the daemon's internals to whoever reaches the port."`
}

// P2PConfig configures the libp2p host.
type P2PConfig struct {
	Listen       []string `toml:"listen" comment:"libp2p listen multiaddrs. The default binds loopback on random ports, so a bare start exposes nothing."`
	MDNS         bool     `toml:"mdns" comment:"Find peers on the local network with mDNS."`
	Relay        bool     `toml:"relay" comment:"Reach and be reached through circuit relays."`
	HolePunching bool     `toml:"hole_punching" comment:"Upgrade relayed connections to direct ones (needs relay)."`
	ConnLow      int      `toml:"conn_low" comment:"Connection manager: trim down to this many connections..."`
	ConnHigh     int      `toml:"conn_high" comment:"...once there are more than this many."`
}

// BudgetConfig configures flow budgets: what each peer may cost per budget
// period.
type BudgetConfig struct {
	// Epoch is the budget period (budget.Config.EpochDuration): a whole
	// number of the protocol's epochs (budget.EpochLength, not configurable,
	// so peers always agree on epoch numbers), 5m to 24h. It is local policy
	// like the limits, and a change carries current spends over.
	Epoch        Duration `toml:"epoch" comment:"Budget epoch: spent budgets reset when it turns."`
	LinkLimit    uint64   `toml:"link_limit" comment:"Flow units per epoch per peer in a pairwise link context (pings, handshakes)."`
	ContactLimit uint64   `toml:"contact_limit" comment:"Flow units per epoch per peer in a two-party context."`
	GroupLimit   uint64   `toml:"group_limit" comment:"Flow units per epoch per peer in a group context."`
}

// LogConfig configures the structured log on stderr.
type LogConfig struct {
	Level  string `toml:"level" comment:"debug, info, warn or error. Error means a bug in aurad, never bad input."`
	Format string `toml:"format" comment:"console (for people) or json (for log collectors)."`
}

// ControlConfig configures remote control over TCP. Off unless tcp_listen is set,
// and then only with TLS and a bearer token.
type ControlConfig struct {
	TCPListen   string `toml:"tcp_listen" comment:"host:port for gRPC over TLS; empty keeps control local to the unix socket."`
	TLSCertFile string `toml:"tls_cert_file" comment:"PEM certificate for tcp_listen."`
	TLSKeyFile  string `toml:"tls_key_file" comment:"PEM private key for tcp_listen."`
	TokenFile   string `toml:"token_file" comment:"File of bearer tokens for TCP clients, one TOKEN LEVEL NAME line each (read, write or admin; a lone token is admin); see aurad token create."`
}

// JournalConfig tunes the fact store.
type JournalConfig struct {
	MaxBatchFacts int `toml:"max_batch_facts" comment:"Most facts committed (and fsynced) together in one transaction."`
}

// DefaultConfig is the embedded default: it runs with no file, no flags and no
// environment, exposing nothing beyond a 0600 unix socket.
func DefaultConfig() Config {
	return Config{
		Version:         ConfigVersion,
		SocketMode:      0o600,
		ShutdownTimeout: Duration(4 * time.Second),
		Log:             LogConfig{Level: "info", Format: "console"},
		Journal:         JournalConfig{MaxBatchFacts: 4096},
		P2P: P2PConfig{
			Listen:  []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
			ConnLow: 32, ConnHigh: 96,
		},
		Sync: SyncConfig{Interval: Duration(30 * time.Second)},
		Budget: BudgetConfig{
			Epoch:     Duration(5 * time.Minute),
			LinkLimit: budget.DefaultLinkLimit, ContactLimit: budget.DefaultContactLimit, GroupLimit: budget.DefaultGroupLimit,
		},
	}
}

// Duration is a time.Duration written as "4s" in TOML.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// FileMode is a permission mode written as the octal string "0600".
type FileMode os.FileMode

func (m FileMode) MarshalText() ([]byte, error) { return fmt.Appendf(nil, "%04o", uint32(m)), nil }
func (m *FileMode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil {
		return fmt.Errorf("want an octal mode like 0600: %w", err)
	}
	*m = FileMode(v)
	return nil
}

// Validate checks values that decoding alone cannot.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if c.Version != ConfigVersion {
		bad("version = %d: this aurad reads config version %d", c.Version, ConfigVersion)
	}
	if c.SocketMode&0o007 != 0 || c.SocketMode&0o600 != 0o600 || c.SocketMode > 0o777 {
		bad("socket_mode = %04o: the owner needs rw and others must have no access", uint32(c.SocketMode))
	}
	if t := time.Duration(c.ShutdownTimeout); t < 100*time.Millisecond || t > 5*time.Minute {
		bad("shutdown_timeout = %s: want 100ms to 5m", t)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level = %q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "console" && c.Log.Format != "json" {
		bad("log.format = %q: want console or json", c.Log.Format)
	}
	if l := c.Metrics.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			bad("metrics.listen = %q: want host:port", l)
		}
	}
	if c.Metrics.Pprof && c.Metrics.Listen == "" {
		bad("metrics.pprof needs metrics.listen")
	}
	if c.Control.TCPListen != "" && (c.Control.TLSCertFile == "" || c.Control.TLSKeyFile == "" || c.Control.TokenFile == "") {
		bad("control.tcp_listen needs control.tls_cert_file, control.tls_key_file and control.token_file")
	}
	if n := c.Journal.MaxBatchFacts; n < 1 || n > 65536 {
		bad("journal.max_batch_facts = %d: want 1 to 65536", n)
	}
	for _, a := range c.P2P.Listen {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			bad("p2p.listen: %q is not a multiaddr: %v", a, err)
		}
	}
	if c.P2P.HolePunching && !c.P2P.Relay {
		bad("p2p.hole_punching needs p2p.relay")
	}
	if c.P2P.ConnLow < 1 || c.P2P.ConnHigh < c.P2P.ConnLow {
		bad("p2p.conn_low = %d, p2p.conn_high = %d: want 1 <= low <= high", c.P2P.ConnLow, c.P2P.ConnHigh)
	}
	if _, err := budget.PeriodEpochs(time.Duration(c.Budget.Epoch)); err != nil || c.Budget.Epoch == 0 {
		bad("budget.epoch = %s: want a whole number of %s epochs, %s to %s", time.Duration(c.Budget.Epoch), budget.EpochLength, budget.EpochLength, budget.MaxPeriod)
	}
	if t := time.Duration(c.Sync.Interval); t != 0 && (t < 100*time.Millisecond || t > 24*time.Hour) {
		bad("sync.interval = %s: want 0s (off) or 100ms to 24h", t)
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w: %w", errors.Join(errs...), core.ErrInvalidArgument)
	}
	return nil
}

// resolve fills the derived defaults (data dir, socket) and makes paths absolute.
func (c *Config) resolve(getenv func(string) string) error {
	if c.DataDir == "" {
		d, err := core.DefaultDataDir(getenv)
		if err != nil {
			return err
		}
		c.DataDir = d
	}
	var err error
	if c.DataDir, err = filepath.Abs(c.DataDir); err != nil {
		return err
	}
	if c.Socket == "" {
		c.Socket = filepath.Join(c.DataDir, core.SocketName)
	}
	c.Socket, err = filepath.Abs(c.Socket)
	return err
}

// Encode writes c as TOML with a comment on every key.
func (c Config) Encode() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# aurad configuration. Every key is optional; a missing key keeps its default.\n")
	buf.WriteString("# Precedence per key: default < this file < AURAD_* environment < command-line flag.\n\n")
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// configField ties one Config field to its flag and environment variable.
type configField struct {
	flag  string
	usage string
	value func(c *Config) pflag.Value
}

func configFields() []configField {
	return []configField{
		{"datadir", "data directory (keys, journal, socket)", func(c *Config) pflag.Value { return (*stringValue)(&c.DataDir) }},
		{"socket", "control socket path", func(c *Config) pflag.Value { return (*stringValue)(&c.Socket) }},
		{"socket-mode", "control socket permissions (octal)", func(c *Config) pflag.Value { return textValue{&c.SocketMode} }},
		{"shutdown-timeout", "graceful shutdown deadline", func(c *Config) pflag.Value { return textValue{&c.ShutdownTimeout} }},
		{"log-level", "debug, info, warn or error", func(c *Config) pflag.Value { return (*stringValue)(&c.Log.Level) }},
		{"log-format", "console or json", func(c *Config) pflag.Value { return (*stringValue)(&c.Log.Format) }},
		{"control-tcp-listen", "host:port for remote gRPC over TLS (off when empty)", func(c *Config) pflag.Value { return (*stringValue)(&c.Control.TCPListen) }},
		{"control-tls-cert", "PEM certificate for the TCP listener", func(c *Config) pflag.Value { return (*stringValue)(&c.Control.TLSCertFile) }},
		{"control-tls-key", "PEM key for the TCP listener", func(c *Config) pflag.Value { return (*stringValue)(&c.Control.TLSKeyFile) }},
		{"control-token-file", "bearer token file for the TCP listener", func(c *Config) pflag.Value { return (*stringValue)(&c.Control.TokenFile) }},
		{"journal-max-batch", "most facts per group commit", func(c *Config) pflag.Value { return (*intValue)(&c.Journal.MaxBatchFacts) }},
		{"p2p-listen", "libp2p listen multiaddrs, comma-separated", func(c *Config) pflag.Value { return (*listValue)(&c.P2P.Listen) }},
		{"p2p-mdns", "find peers on the local network", func(c *Config) pflag.Value { return (*boolValue)(&c.P2P.MDNS) }},
		{"p2p-relay", "use circuit relays", func(c *Config) pflag.Value { return (*boolValue)(&c.P2P.Relay) }},
		{"p2p-hole-punching", "upgrade relayed connections to direct ones", func(c *Config) pflag.Value { return (*boolValue)(&c.P2P.HolePunching) }},
		{"budget-epoch", "flow budget epoch", func(c *Config) pflag.Value { return textValue{&c.Budget.Epoch} }},
		{"metrics-listen", "host:port for Prometheus /metrics (off when empty)", func(c *Config) pflag.Value { return (*stringValue)(&c.Metrics.Listen) }},
		{"metrics-pprof", "also serve /debug/pprof/ on the metrics listener", func(c *Config) pflag.Value { return (*boolValue)(&c.Metrics.Pprof) }},
		{"sync-interval", "reconcile with a random peer this often (0s: only on connection and on demand)", func(c *Config) pflag.Value { return textValue{&c.Sync.Interval} }},
	}
}

// envName derives AURAD_LOG_LEVEL from log-level.
func envName(flag string) string {
	return "AURAD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// ConfigFlags holds aurad's flags and the values they were given.
type ConfigFlags struct {
	fs     *pflag.FlagSet
	parsed *Config
	config *string
}

// NewConfigFlags registers every config flag, plus --config, on fs.
func NewConfigFlags(fs *pflag.FlagSet) *ConfigFlags {
	defaults := DefaultConfig() // so --help shows the defaults
	cf := &ConfigFlags{fs: fs, parsed: &defaults, config: new(string)}
	fs.StringVar(cf.config, "config", "", "TOML config file (env "+EnvConfig+"; default <datadir>/aurad.toml when present)")
	for _, f := range configFields() {
		fs.Var(f.value(cf.parsed), f.flag, f.usage+" (env "+envName(f.flag)+")")
	}
	return cf
}

// Load decides every field: defaults, then the file, then the environment,
// then flags the user actually set.
func (cf *ConfigFlags) Load(getenv func(string) string) (Config, string, error) {
	cfg := DefaultConfig()
	apply := func(c *Config, onlyData bool) error {
		for _, f := range configFields() {
			if onlyData && f.flag != "datadir" {
				continue
			}
			env := getenv(envName(f.flag))
			if f.flag == "datadir" && env == "" {
				env = getenv(core.EnvDataDir)
			}
			if env != "" {
				if err := f.value(c).Set(env); err != nil {
					return fmt.Errorf("%s=%q: %w: %w", envName(f.flag), env, err, core.ErrInvalidArgument)
				}
			}
			if fl := cf.fs.Lookup(f.flag); fl != nil && fl.Changed {
				if err := f.value(c).Set(fl.Value.String()); err != nil {
					return err
				}
			}
		}
		return nil
	}

	// The file's location may depend on the data dir, which flags and the
	// environment can set; find it first.
	path := *cf.config
	if path == "" {
		path = getenv(EnvConfig)
	}
	explicit := path != ""
	if !explicit {
		probe := DefaultConfig()
		if err := apply(&probe, true); err != nil {
			return Config{}, "", err
		}
		if err := probe.resolve(getenv); err != nil {
			return Config{}, "", err
		}
		path = filepath.Join(probe.DataDir, ConfigFileName)
	}
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := decodeConfig(raw, &cfg); err != nil {
			return Config{}, "", fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist) && !explicit:
		path = ""
	default:
		source := "config file"
		switch {
		case *cf.config != "":
			source = "--config"
		case explicit:
			source = EnvConfig
		}
		return Config{}, "", fmt.Errorf("%s: %w: %w", source, err, core.ErrInvalidArgument)
	}
	if err := apply(&cfg, false); err != nil {
		return Config{}, "", err
	}
	if err := cfg.resolve(getenv); err != nil {
		return Config{}, "", err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, "", err
	}
	return cfg, path, nil
}

// decodeConfig decodes TOML into cfg, keeping the values of absent keys and
// naming the first unknown key.
func decodeConfig(raw []byte, cfg *Config) error {
	err := toml.NewDecoder(bytes.NewReader(raw)).DisallowUnknownFields().Decode(cfg)
	var missing *toml.StrictMissingError
	if errors.As(err, &missing) && len(missing.Errors) > 0 {
		e := missing.Errors[0]
		row, _ := e.Position()
		return fmt.Errorf("line %d: unknown key %q: %w", row, strings.Join(e.Key(), "."), core.ErrInvalidArgument)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Errorf("line %d column %d: %s: %w", row, col, de.Error(), core.ErrInvalidArgument)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", err, core.ErrInvalidArgument)
	}
	return nil
}

type stringValue string

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string     { return string(*s) }
func (s *stringValue) Type() string       { return "string" }

type intValue int

func (i *intValue) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("want an integer")
	}
	*i = intValue(n)
	return nil
}
func (i *intValue) String() string { return strconv.Itoa(int(*i)) }
func (i *intValue) Type() string   { return "int" }

// textValue adapts the TOML text types (Duration, FileMode) to flags.
type textValue struct {
	v interface {
		MarshalText() ([]byte, error)
		UnmarshalText([]byte) error
	}
}

func (t textValue) Set(s string) error { return t.v.UnmarshalText([]byte(s)) }
func (t textValue) String() string {
	if t.v == nil {
		return ""
	}
	b, _ := t.v.MarshalText()
	return string(b)
}
func (t textValue) Type() string { return "value" }

type boolValue bool

func (b *boolValue) Set(v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	*b = boolValue(x)
	return nil
}
func (b *boolValue) String() string   { return strconv.FormatBool(bool(*b)) }
func (b *boolValue) Type() string     { return "bool" }
func (b *boolValue) IsBoolFlag() bool { return true }

// listValue is a comma-separated list; setting it replaces the whole list.
type listValue []string

func (l *listValue) Set(v string) error {
	*l = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
func (l *listValue) String() string { return strings.Join(*l, ",") }
func (l *listValue) Type() string   { return "list" }
