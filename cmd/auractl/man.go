package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/aura-p2p/aura/internal/buildinfo"
)

// newManCmd writes man pages generated from the command tree, so they never
// drift from --help. Hidden: packagers run it (make man), users read the pages.
func newManCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write a man page for every command into DIR (section 1)",
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			root := cmd.Root()
			// The footer would name the day of the build; the version says
			// which auractl the pages describe, and SOURCE_DATE_EPOCH (the
			// reproducible-builds convention) fixes the header's month.
			root.DisableAutoGenTag = true
			header := &doc.GenManHeader{Section: "1", Source: "auractl " + buildinfo.Version(), Manual: "Aura"}
			if s := a.getenv("SOURCE_DATE_EPOCH"); s != "" {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return usagef("SOURCE_DATE_EPOCH=%q: want seconds since 1970", s)
				}
				date := time.Unix(n, 0).UTC()
				header.Date = &date
			}
			if err := doc.GenManTree(root, header, dir); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			_, err := fmt.Fprintf(a.out, "man pages written to %s\n", dir)
			return err
		},
	}
}
