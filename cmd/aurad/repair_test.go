package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The repair commands, as an operator runs them: one readable line on
// failure, exit 1 for damage and 2 for usage, and nothing written to the
// damaged data dir.
func TestRepairCommands(t *testing.T) {
	_, dataDir := backupOfNewNode(t)
	jpath := filepath.Join(dataDir, "journal.db")
	sound, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runAurad(nil, "check", "--full", "--datadir", dataDir)
	if code != exitOK || !strings.Contains(out, "problems:    none") || !strings.Contains(out, "verified:    1 facts") {
		t.Fatalf("check of a sound dir: %d %q %q", code, out, errOut)
	}

	if err := os.Truncate(jpath, 8192); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runAurad(nil, "check", "--datadir", dataDir)
	if code != exitFailed || !strings.Contains(out, "truncated") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "aurad salvage") {
		t.Fatalf("check of a truncated journal: %d %q %q", code, out, errOut)
	}

	// Salvage from the damaged dir recovers nothing from 8 KiB but copies the
	// keys and says what it could not read; the damaged file is untouched.
	os.WriteFile(jpath, sound[:len(sound)/2], 0o600)
	to := filepath.Join(shortTempDir(t), "salvaged")
	out, errOut, code = runAurad(nil, "salvage", "--from", dataDir, "--to", to)
	if code != exitOK || !strings.Contains(out, "keys copied: [device.key hpke.key]") {
		t.Fatalf("salvage: %d %q %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(jpath); len(b) != len(sound)/2 {
		t.Fatal("salvage changed the damaged journal")
	}
	if _, _, code = runAurad(nil, "salvage", "--from", dataDir, "--to", to); code != exitFailed {
		t.Fatalf("salvage into a dir with a journal: exit %d", code)
	}
	if _, _, code = runAurad(nil, "salvage", "--from", dataDir); code != exitUsage {
		t.Fatalf("salvage without --to: exit %d", code)
	}

	// init refuses a dir with a journal, and founds one without.
	if _, errOut, code = runAurad(nil, "init", "--datadir", dataDir); code != exitFailed || !strings.Contains(errOut, "init never replaces a journal") {
		t.Fatalf("init over a journal: %d %q", code, errOut)
	}
	os.Remove(jpath)
	out, errOut, code = runAurad(nil, "init", "--datadir", dataDir)
	if code != exitOK || !strings.Contains(out, "kept the device keys") {
		t.Fatalf("init: %d %q %q", code, out, errOut)
	}
	if _, _, code = runAurad(nil, "check", "--full", "--datadir", dataDir); code != exitOK {
		t.Fatalf("check after init: exit %d", code)
	}
}
