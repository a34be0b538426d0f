package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/aura-p2p/aura/internal/buildinfo"
	"github.com/aura-p2p/aura/internal/node"
)

// Exit codes of aurad.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError is a mistake in what aurad was told: a flag, or the config that
// flags, environment and file make together. It exits 2 whichever of them
// holds the mistake, so a supervisor or script can tell "fix the command or
// config" from "aurad failed".
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func execute(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	root := newRootCmd(stdout, stderr, getenv)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "aurad: %v\n", err)
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitFailed
}

func newRootCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "aurad",
		Short: "Aura daemon: a private peer-to-peer coordination journal",
		Long: `aurad keeps this device's signed fact journal and serves the gRPC API that
auractl drives. With no flags it runs in the foreground on embedded defaults:
data in $AURAD_DATADIR or $AURA_DATADIR, else $XDG_DATA_HOME/aura, else
~/.local/share/aura, and the control socket <datadir>/aurad.sock.

Settings come from, in rising precedence per key: defaults, the TOML file
(--config, else $AURAD_CONFIG, else <datadir>/aurad.toml when present),
AURAD_* environment variables, flags. A file named by --config or
$AURAD_CONFIG must exist.

Exit codes: 0 stopped cleanly, 1 failed while running, 2 usage or
configuration error (bad flag, value, environment variable or config file).`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	flags := node.NewConfigFlags(root.Flags())
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, file, err := flags.Load(getenv)
		if err != nil {
			return usageError{err}
		}
		return runDaemon(cfg, file, stderr)
	}
	root.AddCommand(newConfigCmd(stdout, getenv), newVersionCmd(stdout), newRestoreCmd(stdout, stderr, getenv),
		newInitCmd(stdout, stderr, getenv), newCheckCmd(stdout, stderr, getenv), newSalvageCmd(stdout, stderr, getenv),
		newTokenCmd(stdout, stderr, getenv))
	return root
}

// newLogger builds the daemon's logger; its level can change while aurad
// runs (auractl log-level).
func newLogger(cfg node.Config, w io.Writer) (*zap.Logger, zap.AtomicLevel, error) {
	l, err := zapcore.ParseLevel(cfg.Log.Level)
	if err != nil {
		return nil, zap.AtomicLevel{}, err
	}
	level := zap.NewAtomicLevelAt(l)
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(encCfg)
	if cfg.Log.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core, zap.AddStacktrace(zapcore.DPanicLevel)), level, nil
}

// runDaemon runs until SIGINT/SIGTERM or a Shutdown call. The first signal
// drains; a second exits at once; a drain that overruns its deadline by a
// margin is cut short so a supervisor can restart the daemon.
func runDaemon(cfg node.Config, file string, stderr io.Writer) error {
	log, level, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	tuneGC(os.Getenv)
	defer log.Sync()
	if file != "" {
		log.Info("config loaded", zap.String("file", file))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		log.Info("signal received; shutting down", zap.Stringer("signal", s))
		cancel()
		time.AfterFunc(time.Duration(cfg.ShutdownTimeout)+2*time.Second, func() {
			log.Warn("shutdown overran its deadline; exiting")
			os.Exit(exitFailed)
		})
		if s, ok := <-sigs; ok {
			log.Warn("second signal; exiting now", zap.Stringer("signal", s))
			os.Exit(exitFailed)
		}
	}()
	return node.Run(ctx, cfg, node.Deps{Logger: log, LogLevel: &level})
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of aurad",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(stdout, "aurad %s\n", buildinfo.Version())
			return err
		},
	}
}

// tuneGC trades memory for CPU unless the operator chose: an idle aurad holds
// about 16 MiB, so collecting at 4x the live heap costs little memory and
// saves a sixth of the CPU per appended fact; the soft limit keeps a large
// heap from growing unbounded.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(512 << 20)
	}
}
