package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/buildinfo"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// journalOptions are the journal's options for a data dir: every reducer,
// validator and membership source the node's components register, so that a
// salvage rebuilds the same state.
func journalOptions(cfg Config, path string, d Deps, log *zap.Logger, reg registry) journal.Options {
	return journal.Options{
		Path:          path,
		CreatedBy:     "aurad " + buildinfo.Version(),
		Logger:        log.Named("journal"),
		Clock:         d.Clock,
		MaxBatchFacts: cfg.Journal.MaxBatchFacts,
		Reducers:      reg.reducers,
		Validators:    reg.validators,
		Membership:    reg.membership,
	}
}

// openIdentity loads the device keys (creating them only when mayFound),
// opens the journal and finds the device's authority, founding one only when
// mayFound. On error nothing stays open.
func openIdentity(ctx context.Context, cfg Config, d Deps, log *zap.Logger, mayFound bool, reg registry, obs journal.CommitObserver) (*Keys, core.AuthorityID, *journal.Journal, bool, error) {
	var auth core.AuthorityID
	st, err := inspectDataDir(cfg.DataDir)
	if err != nil {
		return nil, auth, nil, false, err
	}
	if !mayFound && !st.hpkeKey {
		return nil, auth, nil, false, fmt.Errorf("%s: %s is missing; put it back from your key backup: %w",
			cfg.DataDir, hpkeKeyFile, core.ErrFailedPrecondition)
	}
	keys, created, err := loadOrCreateKeys(cfg.DataDir, d.Rand)
	if err != nil {
		return nil, auth, nil, false, err
	}
	if created {
		log.Info("created device keys", zap.Stringer("device", keys.DeviceID()))
	}
	path := filepath.Join(cfg.DataDir, JournalFileName)
	jo := journalOptions(cfg, path, d, log, reg)
	jo.Observer = obs
	j, err := journal.Open(ctx, jo)
	if errors.Is(err, journal.ErrDamaged) {
		return nil, auth, nil, false, fmt.Errorf("%w; nothing was changed. `aurad check --full --datadir %s` says more, "+
			"`aurad salvage --from %s --to NEWDIR` copies out every fact that still verifies, `aurad restore` restores a backup",
			err, cfg.DataDir, cfg.DataDir)
	}
	if err != nil {
		return nil, auth, nil, false, err
	}
	signer := journal.NewKeySigner(keys.Device)
	auth, founded, err := ensureAuthority(ctx, j, signer, keys, d.Rand, mayFound)
	if err != nil {
		j.Close()
		return nil, auth, nil, false, fmt.Errorf("authority: %w", err)
	}
	return keys, auth, j, founded, nil
}

// InitReport is what `aurad init` founded.
type InitReport struct {
	Device    core.DeviceID
	Authority core.AuthorityID
	KeysNew   bool
}

// Init founds a data dir explicitly: device keys (kept if present) and a new
// journal with a one-device authority. It refuses a data dir that already
// holds a journal, damaged or not.
func Init(ctx context.Context, cfg Config, d Deps) (InitReport, error) {
	d = d.withDefaults()
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return InitReport{}, err
	}
	lock, err := lockDataDir(cfg.DataDir, cfg.Socket)
	if err != nil {
		return InitReport{}, err
	}
	defer lock.release()
	st, err := inspectDataDir(cfg.DataDir)
	if err != nil {
		return InitReport{}, err
	}
	if st.journal {
		return InitReport{}, fmt.Errorf("%s: %s exists; init never replaces a journal (move it away first if you really mean to start over): %w",
			cfg.DataDir, JournalFileName, ErrInitialised)
	}
	reg, err := daemonRegistry()
	if err != nil {
		return InitReport{}, err
	}
	keys, auth, j, _, err := openIdentity(ctx, cfg, d, d.Logger, true, reg, nil)
	if err != nil {
		return InitReport{}, err
	}
	if err := j.Close(); err != nil {
		return InitReport{}, err
	}
	return InitReport{Device: keys.DeviceID(), Authority: auth, KeysNew: !st.deviceKey}, nil
}
