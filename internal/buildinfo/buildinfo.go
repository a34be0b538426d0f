// Package buildinfo says which build of Aura is running. It is its own package
// so auractl can report its version without linking the daemon.
package buildinfo

import "runtime/debug"

// version is set at link time: -ldflags "-X github.com/aura-p2p/aura/internal/buildinfo.version=v1.2.3".
// It is a variable only because the linker can set nothing else.
var version = ""

// Version returns the release version, else the module version, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
