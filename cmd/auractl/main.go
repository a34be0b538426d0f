// Command auractl drives a running aurad over its control socket. The command
// tree lives in root.go, one file per noun.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Cancelling on SIGINT/SIGTERM lets watch commands end cleanly and
	// in-flight calls tell aurad they were abandoned.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
