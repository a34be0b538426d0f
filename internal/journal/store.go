package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
)

// Errors callers branch on.
var (
	// ErrNewerSchema: the file was written by a newer aurad; refusing protects it.
	ErrNewerSchema = fmt.Errorf("journal written by a newer schema: %w", core.ErrFailedPrecondition)
	// ErrCorrupt: stored bytes do not decode. Never caused by client input.
	ErrCorrupt = fmt.Errorf("journal corrupt: %w", core.ErrDataLoss)
	// ErrClosed: the journal is shutting down or closed.
	ErrClosed = fmt.Errorf("journal closed: %w", core.ErrUnavailable)
	// ErrLocked: another process holds the file.
	ErrLocked = fmt.Errorf("journal file is locked by another process: %w", core.ErrUnavailable)
)

// initialMmapSize is the address space mapped for the file up front (see
// Open): room for a journal of several million facts before any remap.
const initialMmapSize = 4 << 30

// Options configure a Journal. Zero values take the defaults noted.
type Options struct {
	// Path of the bbolt file.
	Path string
	// CreatedBy is recorded in a new store's meta bucket ("aurad v0.1.0").
	CreatedBy string
	Logger    *zap.Logger
	Clock     core.Clock
	// Reducers fold facts into state, maintained on every commit.
	Reducers []Reducer
	// Validators check facts of their type before insert.
	Validators map[string]Validator
	// Membership sources, at most one a namespace kind. A kind without one
	// gets its default: GenesisOnly for authority namespaces,
	// ContextParticipants for context namespaces.
	Membership []MembershipSource
	// Orphans bounds the pool of received facts that wait for their namespace
	// or their author's membership (zero fields take the defaults).
	Orphans OrphanLimits
	// MaxBatchFacts bounds how many facts one commit holds (default 4096).
	MaxBatchFacts int
	// LockTimeout bounds the wait for the file lock (default 1s).
	LockTimeout time.Duration
	// NoSync skips fsync. Only for tests and benchmarks that measure other things.
	NoSync bool
	// Observer, if set, is told of every group commit (metrics).
	Observer CommitObserver
}

// CommitObserver is told of each group commit: how many requests and facts
// it held, how long it took, and whether it failed. It runs on the writer
// goroutine and must not block.
type CommitObserver interface {
	ObserveCommit(txns, facts int, took time.Duration, err error)
}

// Validator checks a fact of one type. It sees only the fact, never state, so
// it runs on the caller's goroutine and can reject before the writer is involved.
type Validator func(f *SignedFact) error

// Journal is the device's fact store. Safe for concurrent use.
type Journal struct {
	db         *bolt.DB
	log        *zap.Logger
	clock      core.Clock
	observer   CommitObserver
	reducers   []Reducer
	validators map[string]Validator
	membership map[core.NamespaceKind]MembershipSource
	maxBatch   int
	orphans    *orphanPool

	queue   chan *request
	closing chan struct{}
	writerD chan struct{}

	// closeMu orders appends against Close: appends hold it for reading while
	// they enqueue, Close for writing while it stops the writer.
	closeMu sync.RWMutex
	closed  bool

	lamports lamportClock
	hub      *hub
	failure  *failure
	// ranges holds the namespaces' range aggregates (ranges.go).
	ranges *rangeIndex
}

// Open opens or creates the store at opts.Path, migrates it to the current
// schema, and starts the writer.
func Open(ctx context.Context, opts Options) (*Journal, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = core.SystemClock{}
	}
	if opts.MaxBatchFacts <= 0 {
		opts.MaxBatchFacts = 4096
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	membership, err := membershipSources(opts.Membership)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
		return nil, fmt.Errorf("journal dir: %w", err)
	}
	// A file that exists is checked before bbolt maps it: bbolt trusts its
	// meta and freelist pages and panics or faults on damaged ones. Only a
	// file that does not exist yet is created.
	if _, err := os.Stat(opts.Path); err == nil {
		if err := quickCheck(opts.Path); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("journal file: %w", err)
	}
	var db *bolt.DB
	err = guarded(func() error {
		var err error
		db, err = bolt.Open(opts.Path, 0o600, &bolt.Options{
			Timeout: opts.LockTimeout,
			// The map freelist is faster for large files, and persisting it
			// (NoFreelistSync false) keeps Open from scanning the whole file.
			FreelistType: bolt.FreelistMapType,
			NoSync:       opts.NoSync,
			// Growing the map waits for every open read transaction, so a
			// long backup would stall all appends the moment the file
			// outgrew its map. Address space is cheap; pages are only
			// resident when touched.
			InitialMmapSize: initialMmapSize,
		})
		return err
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", opts.Path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", opts.Path, err)
	}
	j := &Journal{
		db:         db,
		log:        opts.Logger,
		clock:      opts.Clock,
		observer:   opts.Observer,
		reducers:   opts.Reducers,
		validators: opts.Validators,
		membership: membership,
		maxBatch:   opts.MaxBatchFacts,
		orphans:    newOrphanPool(opts.Orphans),
		queue:      make(chan *request, 1024),
		closing:    make(chan struct{}),
		writerD:    make(chan struct{}),
		lamports:   lamportClock{max: map[core.Namespace]uint64{}},
		failure:    newFailure(),
		ranges:     newRangeIndex(),
	}
	if err := guarded(func() error { return migrate(db, opts.CreatedBy, opts.Logger) }); err != nil {
		db.Close()
		return nil, err
	}
	var lastSeq uint64
	err = guarded(func() error {
		return db.View(func(tx *bolt.Tx) error {
			lastSeq = getU64(tx.Bucket(bucketMeta).Get(keyLastSeq))
			return checkSchema(tx, &CheckReport{}, func(ns core.Namespace, r *nsRecord) {
				j.lamports.observe(ns, r.maxLamport)
			})
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: %w", opts.Path, err)
	}
	j.hub = newHub(lastSeq)
	go j.writer()
	return j, nil
}

// Close stops accepting appends, commits what is queued, ends watches and
// closes the file. Safe to call more than once.
func (j *Journal) Close() error {
	j.closeMu.Lock()
	if j.closed {
		j.closeMu.Unlock()
		return nil
	}
	j.closed = true
	close(j.closing)
	j.closeMu.Unlock()
	<-j.writerD
	j.hub.close()
	return j.db.Close()
}

// lamportClock hands out lamport values for local facts: one more than the
// highest seen in the namespace, never the same twice.
type lamportClock struct {
	mu  sync.Mutex
	max map[core.Namespace]uint64
}

func (c *lamportClock) next(ns core.Namespace) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max[ns]++
	return c.max[ns]
}

func (c *lamportClock) observe(ns core.Namespace, l uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l > c.max[ns] {
		c.max[ns] = l
	}
}

// Stats are counts for status displays.
type Stats struct {
	Facts      uint64
	Namespaces uint64
	LastSeq    uint64
	// The orphan pool: facts held, their bytes, and evictions since Open.
	Orphans, OrphanBytes, OrphansEvicted uint64
}

// Stats reads the journal's counters.
func (j *Journal) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := j.view(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		s.Facts = getU64(m.Get(keyFactCount))
		s.LastSeq = getU64(m.Get(keyLastSeq))
		s.Namespaces = uint64(tx.Bucket(bucketNamespaces).Stats().KeyN)
		return nil
	})
	s.Orphans, s.OrphanBytes, s.OrphansEvicted = j.OrphanStats()
	return s, err
}
