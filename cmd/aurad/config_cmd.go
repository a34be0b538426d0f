package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/aura-p2p/aura/internal/node"
)

func newConfigCmd(stdout io.Writer, getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show aurad's configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the default configuration file",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := node.DefaultConfig().Encode()
			if err != nil {
				return err
			}
			_, err = stdout.Write(b)
			return err
		},
	})
	dump := &cobra.Command{
		Use:   "dump",
		Short: "Print the effective configuration: defaults, file, environment and flags combined",
		Args:  cobra.NoArgs,
	}
	flags := node.NewConfigFlags(dump.Flags())
	dump.RunE = func(*cobra.Command, []string) error {
		cfg, _, err := flags.Load(getenv)
		if err != nil {
			return usageError{err}
		}
		b, err := cfg.Encode()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	cmd.AddCommand(dump)
	return cmd
}
