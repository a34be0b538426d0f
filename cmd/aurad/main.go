// Command aurad is the Aura daemon: it keeps the device's signed fact journal
// and serves the gRPC API that auractl and other clients drive.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
