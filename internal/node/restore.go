package node

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// restoreSuffix marks a restore in progress: the copy is checked under this
// name and renamed to journal.db only once it passed.
const restoreSuffix = ".restore"

// Errors of Restore that callers (and tests) branch on.
var (
	// ErrJournalExists: the data dir already holds a journal. Restoring over
	// one is never done in place; it would destroy the only copy of facts the
	// backup may not have.
	ErrJournalExists = fmt.Errorf("data dir already holds a journal: %w", core.ErrAlreadyExists)
	// ErrForeignBackup: the data dir's device key is not a member of the
	// authority the backup belongs to; started, that device could not write
	// to its own account.
	ErrForeignBackup = fmt.Errorf("backup belongs to another device's authority: %w", core.ErrFailedPrecondition)
	// ErrNotABackup: the file is a sound bbolt journal but no aurad data
	// dir's: it records no authority.
	ErrNotABackup = fmt.Errorf("not a backup of an aurad journal: %w", core.ErrInvalidArgument)
)

// RestoreReport says what a restore installed.
type RestoreReport struct {
	From    string
	DataDir string
	// Journal is the path of the installed journal.
	Journal string
	Size    int64
	SHA256  [32]byte

	SchemaVersion uint32
	Facts         uint64
	LastSeq       uint64
	Namespaces    uint64
	Authority     core.AuthorityID
	// Members are the authority's devices as of the backup.
	Members []core.DeviceID
	// Device is the data dir's device; zero when the dir holds no device key
	// yet (HasDeviceKey false).
	Device       core.DeviceID
	HasDeviceKey bool
	Elapsed      time.Duration
}

// Restore installs the journal backup from as dataDir's journal, for a daemon
// that is not running. It refuses a data dir that already holds a journal,
// holds the data dir's lock throughout (so no daemon can start on it
// meanwhile), and accepts the backup only after it passed a full check and,
// when the data dir holds a device key, only if that device is a member of the
// backup's authority. A refused restore leaves no journal behind.
func Restore(ctx context.Context, dataDir, from string, log *zap.Logger) (rep RestoreReport, err error) {
	if log == nil {
		log = zap.NewNop()
	}
	start := time.Now()
	if dataDir, err = filepath.Abs(dataDir); err != nil {
		return rep, fmt.Errorf("data dir: %w", err)
	}
	rep.DataDir, rep.From = dataDir, from
	final := filepath.Join(dataDir, JournalFileName)
	tmp := final + restoreSuffix
	rep.Journal = final

	src, err := openBackup(from)
	if err != nil {
		return rep, err
	}
	defer src.Close()
	if err := refuseExistingJournal(final); err != nil {
		return rep, err
	}

	// The data dir must pass the checks a start makes, or the restored
	// daemon would not start.
	createdDir := false
	if _, err := os.Stat(dataDir); errors.Is(err, os.ErrNotExist) {
		if err := prepareDataDir(dataDir); err != nil {
			return rep, err
		}
		createdDir = true
	} else if err != nil {
		return rep, fmt.Errorf("data dir: %w", err)
	} else if err := checkOwnerOnly(dataDir, true); err != nil {
		return rep, err
	}
	lock, err := lockDataDir(dataDir, "")
	if err != nil {
		if createdDir {
			_ = os.RemoveAll(dataDir)
		}
		return rep, fmt.Errorf("restore into %s: %w", dataDir, err)
	}
	installed := false
	defer func() {
		if !installed {
			if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				log.Warn("removing the refused restore copy", zap.String("path", tmp), zap.Error(rerr))
			}
		}
		if !installed && createdDir {
			// Nobody knew the dir before we made it: leave nothing.
			_ = os.Remove(filepath.Join(dataDir, lockFileName))
			lock.release()
			_ = os.Remove(dataDir)
			return
		}
		lock.release()
	}()
	// The check under the lock is the one that counts: a daemon may have
	// created the journal between the first look and the lock.
	if err := refuseExistingJournal(final); err != nil {
		return rep, err
	}
	if fi, err := os.Stat(tmp); err == nil {
		if sfi, serr := src.Stat(); serr == nil && os.SameFile(fi, sfi) {
			return rep, fmt.Errorf("%s is the working copy of an interrupted restore; copy it elsewhere and restore from there: %w", from, core.ErrInvalidArgument)
		}
		// Left by a restore that was interrupted; we hold the lock, so
		// no other restore owns it.
		log.Info("removing the copy of an interrupted restore", zap.String("path", tmp))
		if err := os.Remove(tmp); err != nil {
			return rep, fmt.Errorf("remove %s: %w", tmp, err)
		}
	}

	log.Info("copying backup", zap.String("from", from), zap.String("to", tmp))
	if rep.Size, rep.SHA256, err = copyBackup(ctx, src, tmp); err != nil {
		return rep, err
	}
	log.Info("checking backup: every page and every fact's signature", zap.Int64("bytes", rep.Size))
	// Progress comes from the verifying goroutines at once: log each tenth
	// by whichever gets there first.
	var lastTenth atomic.Uint64
	check, err := journal.CheckFile(ctx, tmp, journal.CheckOptions{Full: true, Progress: func(done, total uint64) {
		if total == 0 {
			return
		}
		tenth := done * 10 / total
		if old := lastTenth.Load(); tenth > old && lastTenth.CompareAndSwap(old, tenth) {
			log.Info("checking backup", zap.Uint64("facts_verified", done), zap.Uint64("facts", total))
		}
	}})
	if err != nil {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		return rep, fmt.Errorf("backup %s failed its check, nothing was restored: %w", from, err)
	}
	rep.SchemaVersion, rep.Namespaces = check.SchemaVersion, check.Namespaces
	if rep.Device, rep.HasDeviceKey, err = dataDirDevice(dataDir); err != nil {
		return rep, err
	}
	if err := readBackup(ctx, tmp, &rep, log); err != nil {
		return rep, err
	}
	if rep.HasDeviceKey && !isMember(rep.Members, rep.Device) {
		return rep, fmt.Errorf("device %s (the key in %s) is not a member of authority %s recorded in %s, whose devices are %s; "+
			"restore it into the data dir of one of those devices, or into an empty one: %w",
			rep.Device, dataDir, rep.Authority, from, joinDevices(rep.Members), ErrForeignBackup)
	}

	if err := refuseExistingJournal(final); err != nil {
		return rep, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return rep, fmt.Errorf("install restored journal: %w", err)
	}
	installed = true
	if err := syncDir(dataDir); err != nil {
		return rep, fmt.Errorf("sync %s after installing the journal: %w", dataDir, err)
	}
	rep.Elapsed = time.Since(start)
	log.Info("journal restored", zap.String("journal", final), zap.Stringer("authority", rep.Authority),
		zap.Uint64("facts", rep.Facts), zap.Int64("bytes", rep.Size), zap.Duration("took", rep.Elapsed.Round(time.Millisecond)))
	return rep, nil
}

func openBackup(from string) (*os.File, error) {
	f, err := os.Open(from)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("backup: %w", err)
	}
	switch {
	case !fi.Mode().IsRegular():
		f.Close()
		return nil, fmt.Errorf("backup %s is not a regular file: %w", from, core.ErrInvalidArgument)
	case fi.Size() == 0:
		f.Close()
		return nil, fmt.Errorf("backup %s is empty: %w", from, core.ErrInvalidArgument)
	}
	return f, nil
}

func refuseExistingJournal(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return fmt.Errorf("%s exists; a restore never replaces a journal in place: stop aurad, move the data dir's journal aside (or restore into a new data dir), then restore: %w", path, ErrJournalExists)
	case errors.Is(err, os.ErrNotExist):
		return nil
	default:
		return fmt.Errorf("journal: %w", err)
	}
}

// copyBackup copies src to a new file at dst, mode 0600, fsynced.
func copyBackup(ctx context.Context, src io.Reader, dst string) (int64, [32]byte, error) {
	var sum [32]byte
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, sum, fmt.Errorf("restore copy: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), &ctxReader{ctx: ctx, r: src})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return n, sum, ctx.Err()
		}
		return n, sum, fmt.Errorf("copy backup to %s: %w", dst, err)
	}
	copy(sum[:], h.Sum(nil))
	return n, sum, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readBackup reads the authority, its members and the counters of the
// checked copy at path. The authority is the one the backed-up daemon
// recorded as its own; a journal without that record (a salvaged one) is
// accepted if it holds an authority with the data dir's device, as a start
// would.
func readBackup(ctx context.Context, path string, rep *RestoreReport, log *zap.Logger) error {
	j, err := journal.Open(ctx, journal.Options{Path: path, Logger: log.Named("journal")})
	if err != nil {
		return fmt.Errorf("open the restored journal: %w", err)
	}
	defer j.Close()
	auth, found, err := recordedAuthority(ctx, j)
	if err == nil && !found && rep.HasDeviceKey {
		auth, found, err = recoverAuthority(ctx, j, rep.Device)
		if err == nil && !found {
			return fmt.Errorf("%s records no authority and holds none with device %s (the key in %s): %w",
				rep.From, rep.Device, rep.DataDir, ErrForeignBackup)
		}
	}
	if err != nil {
		return fmt.Errorf("backup %s: %w", rep.From, err)
	}
	if !found {
		return fmt.Errorf("%s records no authority: %w", rep.From, ErrNotABackup)
	}
	rep.Authority = auth
	if rep.Members, err = j.Members(ctx, core.AuthorityNamespace(rep.Authority)); err != nil {
		return fmt.Errorf("backup %s names authority %s but lacks its namespace: %v: %w", rep.From, rep.Authority, err, journal.ErrDamaged)
	}
	st, err := j.Stats(ctx)
	if err != nil {
		return err
	}
	rep.Facts, rep.LastSeq = st.Facts, st.LastSeq
	return nil
}

// dataDirDevice reads the device id from the data dir's device key, if any.
func dataDirDevice(dir string) (core.DeviceID, bool, error) {
	path := filepath.Join(dir, deviceKeyFile)
	der, err := readSecret(path, "PRIVATE KEY")
	if errors.Is(err, os.ErrNotExist) {
		return core.DeviceID{}, false, nil
	}
	if err != nil {
		return core.DeviceID{}, false, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	priv, ok := k.(ed25519.PrivateKey)
	if err != nil || !ok {
		return core.DeviceID{}, false, fmt.Errorf("%s is not an Ed25519 PKCS#8 key: %w", path, core.ErrFailedPrecondition)
	}
	id, err := core.DeviceIDFromKey(priv.Public().(ed25519.PublicKey))
	return id, err == nil, err
}

func isMember(members []core.DeviceID, d core.DeviceID) bool {
	for _, m := range members {
		if m == d {
			return true
		}
	}
	return false
}

func joinDevices(ds []core.DeviceID) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, ", ")
}
