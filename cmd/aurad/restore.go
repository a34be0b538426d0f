package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/aura-p2p/aura/internal/node"
)

func newRestoreCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "restore --from FILE [--datadir DIR]",
		Short: "Install a journal backup (from `auractl backup`) into a data dir holding no journal",
		Long: `restore installs a journal backup taken with ` + "`auractl backup`" + ` as the journal of a
data dir, for a daemon that is not running: the same authority, facts, budgets
and peers as when the backup was taken.

The data dir must hold no journal: it is either empty (or new), or holds only
the device's keys (device.key, hpke.key), which a backup does not contain and
which are backed up separately. A journal is never replaced in place: move it
aside first. The backup is copied to <datadir>/journal.db.restore, checked
page by page and fact by fact (every signature), and, when the data dir holds a
device key, accepted only if that device is a member of the backup's
authority; only then is it renamed to journal.db. A refused restore leaves no
journal behind. The data dir's lock is held throughout, so no aurad can start
on it meanwhile. The data dir is found as aurad finds it (--datadir,
$AURA_DATADIR, a --config file's data_dir, the default). Run it as the user
aurad runs as.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("restore takes no arguments (got %q); the backup is --from FILE", args)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "backup file written by `auractl backup` (required)")
	// The daemon's own flags, so that --datadir, $AURA_DATADIR and a
	// --config file's data_dir name the same data dir as for aurad itself.
	flags := node.NewConfigFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if from == "" {
			return usageError{fmt.Errorf("restore: --from FILE is required")}
		}
		cfg, _, err := flags.Load(getenv)
		if err != nil {
			return usageError{err}
		}
		cfg.Log.Format = "console"
		log, _, err := newLogger(cfg, stderr)
		if err != nil {
			return err
		}
		defer log.Sync()
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		rep, err := node.Restore(ctx, cfg.DataDir, from, log)
		if err != nil {
			return err
		}
		return printRestore(stdout, rep)
	}
	return cmd
}

func printRestore(w io.Writer, rep node.RestoreReport) error {
	device := rep.Device.String() + " (a member)"
	if !rep.HasDeviceKey {
		device = "none yet: copy the device's device.key and hpke.key (mode 0600) into " + rep.DataDir +
			" before starting aurad (it refuses to start a journal without its device key)"
	}
	members := make([]string, len(rep.Members))
	for i, m := range rep.Members {
		members[i] = m.String()
	}
	_, err := fmt.Fprintf(w, `restored %s
into:       %s
authority:  %s
members:    %s
device:     %s
facts:      %d (last seq %d, %d namespaces, schema %d)
size:       %d bytes, sha256 %s
took:       %s
`, rep.From, filepath.Join(rep.DataDir, filepath.Base(rep.Journal)), rep.Authority, strings.Join(members, ", "), device,
		rep.Facts, rep.LastSeq, rep.Namespaces, rep.SchemaVersion, rep.Size, hex.EncodeToString(rep.SHA256[:]), rep.Elapsed.Round(time.Millisecond))
	return err
}
