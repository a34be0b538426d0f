package core

import (
	"fmt"
	"os"
	"path/filepath"
)

// Environment variables honoured by both aurad and auractl.
const (
	EnvDataDir = "AURA_DATADIR"
)

// SocketName is the control socket's file name inside the data dir.
const SocketName = "aurad.sock"

// DefaultDataDir is where aurad keeps its keys, journal and socket when not told
// otherwise: $AURA_DATADIR, else $XDG_DATA_HOME/aura, else ~/.local/share/aura.
// getenv is passed in so callers and tests decide where the environment comes from.
func DefaultDataDir(getenv func(string) string) (string, error) {
	if d := getenv(EnvDataDir); d != "" {
		return filepath.Clean(d), nil
	}
	if x := getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "aura"), nil
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no data dir: set --datadir, %s or HOME: %w", EnvDataDir, ErrInvalidArgument)
		}
		home = h
	}
	return filepath.Join(home, ".local", "share", "aura"), nil
}
