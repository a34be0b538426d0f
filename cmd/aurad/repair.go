package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/node"
	"github.com/aura-p2p/aura/internal/progress"
)

func newInitCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Found a new account in a data dir that holds no journal",
		Long: `init founds this device's one-device account explicitly: it creates the device
keys (or keeps those already in the data dir) and a new journal whose first
fact is the account's genesis. A plain start of aurad does this by itself only
in an empty data dir; a data dir whose journal went missing is refused instead,
so that a lost journal is noticed, and init is how to start over on purpose.
It never replaces an existing journal.`,
		Args: noArgs("init"),
	}
	flags := node.NewConfigFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, _, err := flags.Load(getenv)
		if err != nil {
			return usageError{err}
		}
		rep, err := node.Init(cmd.Context(), cfg, node.Deps{})
		if err != nil {
			return err
		}
		keys := "kept the device keys already in the data dir"
		if rep.KeysNew {
			keys = "created new device keys"
		}
		_, err = fmt.Fprintf(stdout, "initialised %s (%s)\ndevice:     %s\nauthority:  %s\n", cfg.DataDir, keys, rep.Device, rep.Authority)
		return err
	}
	return cmd
}

func newCheckCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	var full bool
	var dataDir string
	cmd := &cobra.Command{
		Use:   "check [--full] [--datadir DIR | JOURNAL_FILE]",
		Short: "Check a stopped daemon's journal for damage",
		Long: `check looks for damage in the journal of a data dir whose daemon is stopped
(it takes the journal's lock, so it refuses while aurad runs), and never writes.
Without --full it runs the check aurad runs at every start: the file's meta
pages, its size against the pages they name, its freelist and root, and the
buckets of its schema. With --full it also walks every page of the file and
verifies every fact: its bytes decode, its id is the hash of its body, and its
author's signature holds. Exit status 0 means sound, 1 damaged or unreadable.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := dataDirArg(dataDir, args, getenv)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			bar := progress.New(stderr, "verifying", progress.Count("facts"))
			rep, err := node.Check(ctx, target, full, bar.Update)
			bar.Finish(err == nil)
			if rep != nil {
				printCheck(stdout, target, full, rep)
			}
			if err != nil && errors.Is(err, journal.ErrDamaged) {
				return fmt.Errorf("%s is damaged; `aurad salvage --from %s --to NEWDIR` copies out every fact that still verifies", target, target)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "walk every page and verify every fact's id and signature")
	cmd.Flags().StringVar(&dataDir, "datadir", "", "data dir to check (default $"+core.EnvDataDir+", else $XDG_DATA_HOME/aura, else ~/.local/share/aura)")
	return cmd
}

func printCheck(w io.Writer, target string, full bool, rep *journal.CheckReport) {
	kind := "quick"
	if full {
		kind = "full"
	}
	fmt.Fprintf(w, "%s check of %s\nsize:        %d bytes\nschema:      %d\nfacts:       %d in %d namespaces\n",
		kind, target, rep.Size, rep.SchemaVersion, rep.Facts, rep.Namespaces)
	if full {
		fmt.Fprintf(w, "verified:    %d facts (id and signature)\n", rep.Verified)
	}
	fmt.Fprintf(w, "took:        %s\n", rep.Elapsed.Round(time.Millisecond))
	if len(rep.Problems) == 0 {
		fmt.Fprintln(w, "problems:    none")
		return
	}
	fmt.Fprintf(w, "problems:    %d\n", len(rep.Problems)+rep.MoreProblems)
	for _, p := range rep.Problems[:min(len(rep.Problems), 20)] {
		fmt.Fprintf(w, "  %s\n", p)
	}
	if n := len(rep.Problems) + rep.MoreProblems - 20; n > 0 {
		fmt.Fprintf(w, "  … and %d more\n", n)
	}
}

func newSalvageCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "salvage --from DAMAGED --to NEWDIR",
		Short: "Copy every fact that still verifies out of a damaged journal into a new data dir",
		Long: `salvage recovers what a damaged journal still holds, into a new data dir, and
never writes to the damaged one. DAMAGED is a data dir or a journal file.
Every page of the file is read (without bbolt, so damage cannot crash it), and
every fact found whose id and signature verify is copied: facts are signed,
so a fact that verifies is exactly what its author wrote. Extension stores
(budgets, peers, sessions, the account record) are copied when their tree reads
back whole. The device keys are copied when DAMAGED is a data dir. The report
says what was recovered and what was lost; start aurad on NEWDIR afterwards.`,
		Args: noArgs("salvage"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return usageError{errors.New("salvage: --from DAMAGED and --to NEWDIR are required")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := node.DefaultConfig()
			cfg.DataDir = to
			cfg.Socket = to + "/aurad.sock"
			bar := progress.New(stderr, "scanning", progress.Count("pages"))
			rep, err := node.Salvage(ctx, cfg, from, node.Deps{}, bar.Update)
			bar.Finish(err == nil)
			if err != nil {
				return err
			}
			printSalvage(stdout, from, rep)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "damaged data dir or journal file (read only)")
	cmd.Flags().StringVar(&to, "to", "", "new data dir to salvage into (must hold no journal)")
	return cmd
}

func printSalvage(w io.Writer, from string, rep *node.SalvageReport) {
	expected := "unknown (the damaged file's counters are unreadable)"
	if rep.FactsExpected > 0 {
		expected = fmt.Sprint(rep.FactsExpected)
	}
	fmt.Fprintf(w, "salvaged %s into %s\nfacts:       %d recovered of %s\n", from, rep.To, rep.FactsRecovered, expected)
	if rep.FactsRejected > 0 {
		fmt.Fprintf(w, "refused:     %d verified facts the new journal would not take, e.g. %s\n", rep.FactsRejected, rep.RejectedReasons[0])
	}
	switch {
	case rep.LostCount < 0:
		fmt.Fprintln(w, "lost:        unknown (the damaged file's id index is unreadable)")
	case rep.LostCount == 0:
		fmt.Fprintln(w, "lost:        none of the facts its index names")
	default:
		fmt.Fprintf(w, "lost:        %d facts its index names, e.g.:\n", rep.LostCount)
		for _, id := range rep.LostIDs {
			fmt.Fprintf(w, "  %s\n", id)
		}
	}
	fmt.Fprintf(w, "ext copied:  %v\n", rep.ExtCopied)
	if len(rep.ExtLost) > 0 {
		fmt.Fprintf(w, "ext lost:    %v\n", rep.ExtLost)
	}
	if len(rep.KeysCopied) > 0 {
		fmt.Fprintf(w, "keys copied: %v\n", rep.KeysCopied)
	}
	if rep.Authority != (core.AuthorityID{}) {
		fmt.Fprintf(w, "authority:   %s\n", rep.Authority)
	} else {
		fmt.Fprintln(w, "authority:   not found (no device keys in the new data dir, or its genesis was lost)")
	}
	fmt.Fprintf(w, "took:        %s\n", rep.Elapsed.Round(time.Millisecond))
}

func dataDirArg(flag string, args []string, getenv func(string) string) (string, error) {
	switch {
	case flag != "" && len(args) > 0:
		return "", usageError{errors.New("give --datadir or a journal file, not both")}
	case flag != "":
		return flag, nil
	case len(args) > 0:
		return args[0], nil
	}
	d, err := core.DefaultDataDir(getenv)
	if err != nil {
		return "", usageError{err}
	}
	return d, nil
}

func noArgs(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("%s takes no arguments (got %q)", name, args)}
		}
		return nil
	}
}
