package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// journalPath accepts a data dir or a journal file and returns the journal
// file and the data dir it lives in.
func journalPath(p string) (file, dir string, err error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", "", err
	}
	if fi.IsDir() {
		return filepath.Join(p, JournalFileName), p, nil
	}
	return p, filepath.Dir(p), nil
}

// Check runs `aurad check`: the data dir's modes and the journal's
// structure, and with full every page and every fact's id and signature. It
// reads only; it fails if a daemon holds the journal.
func Check(ctx context.Context, dataDirOrFile string, full bool, progress func(done, total uint64)) (*journal.CheckReport, error) {
	file, dir, err := journalPath(dataDirOrFile)
	if err != nil {
		return nil, err
	}
	if file == filepath.Join(dir, JournalFileName) {
		if err := checkOwnerOnly(dir, true); err != nil {
			return nil, err
		}
		if _, err := inspectDataDir(dir); err != nil {
			return nil, err
		}
		for _, name := range []string{lockFileName, ReadyFileName} {
			if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
				if err := checkOwnerOnly(filepath.Join(dir, name), false); err != nil {
					return nil, err
				}
			}
		}
	}
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return journal.CheckFile(ctx, file, journal.CheckOptions{Full: full, Progress: progress})
}

// SalvageReport is what `aurad salvage` recovered.
type SalvageReport struct {
	*journal.SalvageReport
	To         string
	KeysCopied []string
	Authority  core.AuthorityID // zero if none could be recovered
}

// Salvage runs `aurad salvage --from DAMAGED --to NEWDIR`: into a new data
// dir, it copies the device keys (when DAMAGED is a data dir) and every fact
// of the damaged journal that still verifies, and each extension store that
// is intact. The damaged journal is only read. The new journal is written
// under a temporary name and becomes journal.db only once complete.
func Salvage(ctx context.Context, cfg Config, from string, d Deps, progress func(done, total uint64)) (*SalvageReport, error) {
	d = d.withDefaults()
	src, srcDir, err := journalPath(from)
	if err != nil {
		return nil, fmt.Errorf("damaged journal: %w", err)
	}
	to := cfg.DataDir
	if abs(srcDir) == abs(to) {
		return nil, fmt.Errorf("salvage writes a new data dir; --to must differ from the damaged one (%s): %w", srcDir, core.ErrInvalidArgument)
	}
	if err := prepareDataDir(to); err != nil {
		return nil, err
	}
	lock, err := lockDataDir(to, cfg.Socket)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	st, err := inspectDataDir(to)
	if err != nil {
		return nil, err
	}
	if st.journal {
		return nil, fmt.Errorf("%s already holds a journal; salvage into an empty data dir: %w", to, ErrInitialised)
	}
	rep := &SalvageReport{To: to}
	for _, name := range []string{deviceKeyFile, hpkeKeyFile} {
		srcKey, dstKey := filepath.Join(srcDir, name), filepath.Join(to, name)
		if _, err := os.Stat(dstKey); err == nil {
			continue
		}
		if _, err := os.Stat(srcKey); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := copySecret(srcKey, dstKey); err != nil {
			return nil, fmt.Errorf("copy %s: %w", name, err)
		}
		rep.KeysCopied = append(rep.KeysCopied, name)
	}

	partial := filepath.Join(to, JournalFileName+".salvage")
	_ = os.Remove(partial) // left by an interrupted salvage
	reg, err := daemonRegistry()
	if err != nil {
		return nil, err
	}
	j, err := journal.Open(ctx, journalOptions(cfg, partial, d, d.Logger, reg))
	if err != nil {
		return nil, err
	}
	closed := false
	defer func() {
		if !closed {
			j.Close()
			os.Remove(partial)
		}
	}()
	rep.SalvageReport, err = journal.Salvage(ctx, src, j, progress)
	if err != nil {
		return nil, err
	}
	// The record of which authority is this device's may have been lost with
	// the node's extension store; the genesis facts still say.
	if keys, _, err := loadKeysIfPresent(to); err == nil && keys != nil {
		id, ok, err := recoverAuthorityRecord(ctx, j, keys.DeviceID())
		if err != nil {
			return nil, err
		}
		if ok {
			rep.Authority = id
		}
	}
	closed = true
	if err := j.Close(); err != nil {
		os.Remove(partial)
		return nil, err
	}
	if err := os.Rename(partial, filepath.Join(to, JournalFileName)); err != nil {
		return nil, err
	}
	if err := syncDir(to); err != nil {
		return nil, err
	}
	d.Logger.Info("salvage done", zap.String("to", to), zap.Uint64("facts", rep.FactsRecovered))
	return rep, nil
}

// recoverAuthorityRecord returns the authority recorded in the journal,
// recording it from the genesis facts if the record was lost.
func recoverAuthorityRecord(ctx context.Context, j *journal.Journal, device core.DeviceID) (core.AuthorityID, bool, error) {
	id, ok, err := recordedAuthority(ctx, j)
	if err != nil || ok {
		return id, ok, err
	}
	id, ok, err = recoverAuthority(ctx, j, device)
	if err != nil || !ok {
		return id, ok, err
	}
	return id, true, recordAuthority(ctx, j, id)
}

// loadKeysIfPresent loads the device keys of a data dir, nil if it has none.
func loadKeysIfPresent(dir string) (*Keys, bool, error) {
	if _, err := os.Stat(filepath.Join(dir, deviceKeyFile)); err != nil {
		return nil, false, nil
	}
	if _, err := os.Stat(filepath.Join(dir, hpkeKeyFile)); err != nil {
		return nil, false, nil
	}
	// Both files exist, so nothing is created.
	return loadOrCreateKeys(dir, nil)
}

// copySecret copies an owner-only file atomically, keeping it owner-only.
func copySecret(src, dst string) error {
	if err := checkOwnerOnly(src, false); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if r, err := filepath.EvalSymlinks(a); err == nil {
		return r
	}
	return a
}
