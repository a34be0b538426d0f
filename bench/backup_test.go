package bench

// Benchmarks of the backup figures of issue 9 (finding 3): how fast
// NodeService.Backup streams a hot snapshot while 32 clients append, and what
// the backup costs those clients.
//
//	go test -run '^$' -bench Backup -benchtime 3x ./bench/
//
// The first invocation fills a node's journal (setup, not timed, shared by
// all; size from AURA_BENCH_BACKUP_FACTS, default 100000 facts of 200 bytes
// from 32 clients); each then times b.N backups, each received as auractl
// receives one: chunks written to a file, hashed, checked against the
// trailer, fsynced. The appenders' invocation grows the journal as it runs.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
)

const (
	backupFactsEnv     = "AURA_BENCH_BACKUP_FACTS"
	defaultBackupFacts = 100_000
	backupAppenders    = 32
	backupConns        = 4
	// baselineWindow is how long the appenders run without a backup, once
	// before the timed backups and once after.
	baselineWindow = 3 * time.Second
)

// fillJournal appends n facts from 32 clients.
func fillJournal(b *testing.B, conns []*grpc.ClientConn, n int) error {
	p := payload(b)
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for c := range backupAppenders {
		js := journalv1.NewJournalServiceClient(conns[c%len(conns)])
		wg.Go(func() {
			req := &journalv1.AppendFactRequest{TypeId: factType, Payload: p}
			for next.Add(1) <= int64(n) {
				if _, err := js.AppendFact(context.Background(), req); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		return fmt.Errorf("filling the journal: %w", *err)
	}
	return nil
}

// receiveBackup streams one backup into a new file in dir, as auractl does,
// and returns its size. With dir "" it hashes and drops the bytes instead.
func receiveBackup(ctx context.Context, conn *grpc.ClientConn, dir string) (int64, error) {
	s, err := nodev1.NewNodeServiceClient(conn).Backup(ctx, &nodev1.BackupRequest{})
	if err != nil {
		return 0, err
	}
	var f interface {
		io.Writer
		Sync() error
	} = discard{}
	if dir != "" {
		file, err := os.CreateTemp(dir, "backup")
		if err != nil {
			return 0, err
		}
		defer os.Remove(file.Name())
		defer file.Close()
		f = file
	}
	h := sha256.New()
	var n int64
	var size uint64
	for {
		m, err := s.Recv()
		if err == io.EOF {
			return n, fmt.Errorf("stream ended without a trailer")
		}
		if err != nil {
			return n, err
		}
		switch {
		case m.GetHeader() != nil:
			size = m.GetHeader().GetSize()
		case m.GetChunk() != nil:
			if _, err := f.Write(m.GetChunk()); err != nil {
				return n, err
			}
			h.Write(m.GetChunk())
			n += int64(len(m.GetChunk()))
		case m.GetTrailer() != nil:
			if uint64(n) != size || !bytes.Equal(m.GetTrailer().GetSha256(), h.Sum(nil)) {
				return n, fmt.Errorf("received %d of %d bytes, or a hash mismatch", n, size)
			}
			return n, f.Sync()
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Sync() error                 { return nil }

// appendLoad runs 32 appending clients until stop is called; stop returns
// how many appends were acknowledged and their latencies.
func appendLoad(b *testing.B, conns []*grpc.ClientConn) (stop func() (int64, []time.Duration)) {
	b.Helper()
	p := payload(b)
	done := make(chan struct{})
	var (
		count    atomic.Int64
		firstErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	lats := make([][]time.Duration, backupAppenders)
	for c := range backupAppenders {
		js := journalv1.NewJournalServiceClient(conns[c%len(conns)])
		wg.Go(func() {
			req := &journalv1.AppendFactRequest{TypeId: factType, Payload: p}
			for {
				select {
				case <-done:
					return
				default:
				}
				t0 := time.Now()
				if _, err := js.AppendFact(context.Background(), req); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				lats[c] = append(lats[c], time.Since(t0))
				count.Add(1)
			}
		})
	}
	return func() (int64, []time.Duration) {
		close(done)
		wg.Wait()
		if err := firstErr.Load(); err != nil {
			b.Fatal(*err)
		}
		return count.Load(), slices.Concat(lats...)
	}
}

func backupFacts(b *testing.B) int {
	if s := os.Getenv(backupFactsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			b.Fatalf("%s=%q: want a fact count", backupFactsEnv, s)
		}
		return n
	}
	return defaultBackupFacts
}

func reportAppends(b *testing.B, prefix string, n int64, d time.Duration, lat []time.Duration) {
	b.ReportMetric(float64(n)/d.Seconds(), prefix+"-facts/s")
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100])/float64(time.Millisecond), prefix+"-p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), prefix+"-max-ms")
}

// BenchmarkBackup: b.N backups of a filled journal. "idle": nothing else
// runs. "32appenders": 32 clients append throughout, and their throughput
// during the backups is compared with that of the same clients without a
// backup (baselineWindow before the backups and again after them).
// "sink=discard" drops the backup instead of writing and fsyncing it, which
// separates the snapshot's own cost from the client's disk writes.
func BenchmarkBackup(b *testing.B) {
	for _, tc := range []struct {
		name          string
		load, discard bool
	}{
		{"idle", false, false},
		{fmt.Sprintf("%dappenders", backupAppenders), true, false},
		{fmt.Sprintf("%dappenders/sink=discard", backupAppenders), true, true},
	} {
		b.Run(tc.name, func(b *testing.B) { benchBackup(b, tc.load, tc.discard) })
	}
}

// backupFixture is the filled node every invocation of BenchmarkBackup
// shares, so the fill is paid once per run of the test binary.
var backupFixture struct {
	once sync.Once
	sock string
	err  error
}

func filledNode(b *testing.B) string {
	f := &backupFixture
	f.once.Do(func() {
		bn, err := startNode()
		if err != nil {
			f.err = err
			return
		}
		shared.mu.Lock()
		shared.stops = append(shared.stops, bn.stop)
		shared.mu.Unlock()
		f.sock = bn.sock
		conns := dialN(b, bn.sock, backupConns)
		t0 := time.Now()
		if f.err = fillJournal(b, conns, backupFacts(b)); f.err != nil {
			return
		}
		b.Logf("setup: %d facts by %d clients in %v", backupFacts(b), backupAppenders, time.Since(t0).Round(time.Millisecond))
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f.sock
}

func benchBackup(b *testing.B, load, discard bool) {
	conns := dialN(b, filledNode(b), backupConns+1)
	appendConns, backupConn := conns[:backupConns], conns[backupConns]
	outDir := b.TempDir()
	if base := os.Getenv(benchDirEnv); base != "" {
		outDir = base
	}
	if discard {
		outDir = ""
	}
	ctx := context.Background()

	var stop func() (int64, []time.Duration)
	var before int64
	var beforeLat []time.Duration
	if load {
		stop = appendLoad(b, appendConns)
		time.Sleep(baselineWindow)
		before, beforeLat = stop()
		stop = appendLoad(b, appendConns)
	}
	var bytesOut int64
	b.ResetTimer()
	for range b.N {
		n, err := receiveBackup(ctx, backupConn, outDir)
		if err != nil {
			b.Fatal(err)
		}
		bytesOut += n
	}
	b.StopTimer()
	elapsed := b.Elapsed()
	b.ReportMetric(float64(bytesOut)/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(bytesOut)/float64(b.N)/1e6, "MB/backup")
	if !load {
		return
	}
	during, duringLat := stop()
	reportAppends(b, "during", during, elapsed, duringLat)

	// The same clients with no backup, as long before the backups as after
	// them, since the journal grows meanwhile.
	stop = appendLoad(b, appendConns)
	time.Sleep(baselineWindow)
	after, afterLat := stop()
	without := float64(before+after) / (2 * baselineWindow).Seconds()
	reportAppends(b, "without", before+after, 2*baselineWindow, slices.Concat(beforeLat, afterLat))
	b.ReportMetric(float64(during)/elapsed.Seconds()/without, "during/without")
}
