package main

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/aura-p2p/aura/internal/node"
	"github.com/aura-p2p/aura/internal/rpc"
)

func newTokenCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the bearer tokens of the TCP control listener",
		Long: `The TCP control listener (control.tcp_listen) admits a call only with a bearer
token from control.token_file, and only if the token's level covers the
method: read observes state, write also creates facts and changes objects,
admin also controls the daemon (shutdown, backup). The unix socket's users
are admin. The file holds one token per line, "TOKEN LEVEL NAME"; a line
holding only a token is an admin token. aurad reads the file at start, so
restart it after adding a token.`,
	}
	cmd.AddCommand(newTokenCreateCmd(stdout, stderr, getenv, rand.Reader))
	return cmd
}

func newTokenCreateCmd(stdout, stderr io.Writer, getenv func(string) string, random io.Reader) *cobra.Command {
	var level, name string
	cmd := &cobra.Command{
		Use:   "create [--level read|write|admin] [--name NAME]",
		Short: "Add a new random token to the control token file and print it",
		Long: `create adds a token of 32 random bytes (base64url) with the given level to
control.token_file, creating the file (mode 0600) if it does not exist, and
prints the token on stdout. This is the only time it is shown: aurad keeps
it in the file, not anywhere it can be read back from over the API.
The running daemon does not see the new token until it restarts.`,
		Args: noArgs("token create"),
	}
	cmd.Flags().StringVar(&level, "level", "read", "what the token may do: read, write or admin")
	cmd.Flags().StringVar(&name, "name", "", "name of the token in the file and in refusals (default LEVEL-N)")
	flags := node.NewConfigFlags(cmd.Flags())
	cmd.RunE = func(*cobra.Command, []string) error {
		p, err := rpc.ParsePermission(level)
		if err != nil {
			return usageError{fmt.Errorf("--level: %w", err)}
		}
		cfg, _, err := flags.Load(getenv)
		if err != nil {
			return usageError{err}
		}
		if cfg.Control.TokenFile == "" {
			return usageError{fmt.Errorf("no token file configured: set control.token_file in the config file, or pass --control-token-file")}
		}
		tok, err := node.CreateToken(cfg.Control.TokenFile, p, name, random)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintln(stdout, tok.Secret); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stderr, "added %s token %q to %s; restart aurad to use it\n", tok.Level, tok.Name, cfg.Control.TokenFile)
		return err
	}
	return cmd
}
