package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/aura-p2p/aura/internal/buildinfo"
)

// versionInfo is `auractl version -o json`. There is no response message to
// print, so the fields are named in the proto style of the other commands.
type versionInfo struct {
	Client string `json:"client_version"`
	Daemon string `json:"daemon_version"`
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print auractl's version and, when it answers, aurad's",
		Long: `Print auractl's version and, when it answers, aurad's.

The command succeeds without a daemon: the client version is still printed
and a note that aurad is not reachable goes to stderr.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{Client: buildinfo.Version()}
			if st, err := getStatus(cmd.Context(), a); err != nil {
				// The client version is the point of this command; a missing
				// daemon is worth a note, not a failure.
				fmt.Fprintln(a.err, "daemon not reachable: "+errorMessage(err))
			} else {
				v.Daemon = st.GetVersion()
			}
			return writeVersion(a.out, a.output == outputJSON, v)
		},
	}
}

func writeVersion(w io.Writer, asJSON bool, v versionInfo) error {
	if asJSON {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode version: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := newTabWriter(w)
	rows := []kv{{"client", v.Client}}
	if v.Daemon != "" {
		rows = append(rows, kv{"daemon", v.Daemon})
	}
	ew := &escapingWriter{w: tw}
	if err := writeKVs(ew, rows); err != nil {
		return err
	}
	if err := ew.flush(); err != nil {
		return err
	}
	return tw.Flush()
}
