package bench

// Benchmarks of the figures in issue 2 ("Figures to measure and report"),
// measured end to end: a real node (node.Start) with a durable journal in a
// temp dir, driven by real gRPC clients over its unix control socket.
//
//	go test -run '^$' -bench . -benchtime 5s -count 3 ./bench/
//
// Nothing here runs without -bench: there are no tests, and the shared
// fixtures are built lazily by the benchmarks that need them.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	crdtv1 "github.com/aura-p2p/aura/api/proto/aura/crdt/v1"
	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	"github.com/aura-p2p/aura/internal/node"
)

const (
	payloadSize   = 200
	factType      = "bench.fact"
	counterName   = "bench-counter"
	counterIncrs  = 100_000
	counterBuilds = 64 // concurrent clients building the counter (setup only)
)

// AURA_BENCH_DIR puts the data dirs (and so the bbolt file being fsynced) on
// a chosen file system; default os.TempDir(). The socket always lives in a
// short os.TempDir() path because sun_path is limited to 108 bytes.
const benchDirEnv = "AURA_BENCH_DIR"

// shared holds fixtures that outlive one benchmark invocation (the 100k
// counter); TestMain stops them.
var shared struct {
	mu    sync.Mutex
	stops []func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	for _, stop := range shared.stops {
		stop()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// benchNode is a running in-process aurad.
type benchNode struct {
	n    *node.Node
	sock string
	stop func()
}

func startNode() (*benchNode, error) {
	sockDir, err := os.MkdirTemp("", "ab")
	if err != nil {
		return nil, err
	}
	dataDir := sockDir
	if base := os.Getenv(benchDirEnv); base != "" {
		if dataDir, err = os.MkdirTemp(base, "ab"); err != nil {
			os.RemoveAll(sockDir)
			return nil, err
		}
	}
	cfg := node.DefaultConfig()
	cfg.DataDir = filepath.Join(dataDir, "data")
	cfg.Socket = filepath.Join(sockDir, "s.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg, node.Deps{Notify: func(string) {}})
	if err != nil {
		os.RemoveAll(sockDir)
		os.RemoveAll(dataDir)
		return nil, fmt.Errorf("node.Start: %w", err)
	}
	return &benchNode{n: n, sock: cfg.Socket, stop: func() {
		n.Stop()
		os.RemoveAll(sockDir)
		os.RemoveAll(dataDir)
	}}, nil
}

// startNodeB starts a node that lives for one benchmark invocation.
func startNodeB(b *testing.B) *benchNode {
	b.Helper()
	bn, err := startNode()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bn.stop)
	return bn
}

func dial(sock string) (*grpc.ClientConn, error) {
	return grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// dialN opens n client connections and makes sure each is connected and the
// node answers on it, so connection setup stays out of the timed region.
func dialN(b *testing.B, sock string, n int) []*grpc.ClientConn {
	b.Helper()
	conns := make([]*grpc.ClientConn, n)
	for i := range conns {
		c, err := dial(sock)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = nodev1.NewNodeServiceClient(c).GetStatus(ctx, &nodev1.GetStatusRequest{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			b.Fatalf("GetStatus on conn %d: %v", i, err)
		}
		conns[i] = c
	}
	return conns
}

func payload(b *testing.B) []byte {
	p := make([]byte, payloadSize)
	if _, err := rand.Read(p); err != nil {
		b.Fatal(err)
	}
	return p
}

// reportLatency reports the p50 and p99 of lat in microseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		i := int(p * float64(len(lat)-1))
		return float64(lat[i]) / float64(time.Microsecond)
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

func reportRate(b *testing.B, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
}

// BenchmarkAppendFact1Client: one client, sequential durable appends of
// 200-byte payloads; every call returns only after its batch is fsynced.
func BenchmarkAppendFact1Client(b *testing.B) {
	bn := startNodeB(b)
	conn := dialN(b, bn.sock, 1)[0]
	js := journalv1.NewJournalServiceClient(conn)
	req := &journalv1.AppendFactRequest{TypeId: factType, Payload: payload(b)}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := js.AppendFact(ctx, req); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportRate(b, "facts/s")
	reportLatency(b, lat)
}

// BenchmarkAppendFact32Clients: 32 goroutines, each a sequential client,
// appending durably at once; b.N appends in total. The sub-benchmarks differ
// in how many gRPC connections the 32 clients share.
func BenchmarkAppendFact32Clients(b *testing.B) {
	for _, conns := range []int{1, 4, 32} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) { benchAppendConcurrent(b, 32, conns) })
	}
}

func benchAppendConcurrent(b *testing.B, clients, nconns int) {
	bn := startNodeB(b)
	conns := dialN(b, bn.sock, nconns)
	p := payload(b)
	ctx := context.Background()
	var (
		next     atomic.Int64
		firstErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	lats := make([][]time.Duration, clients)
	b.ResetTimer()
	for c := range clients {
		js := journalv1.NewJournalServiceClient(conns[c%nconns])
		wg.Go(func() {
			req := &journalv1.AppendFactRequest{TypeId: factType, Payload: p}
			lat := make([]time.Duration, 0, b.N/clients+1)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if _, err := js.AppendFact(ctx, req); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			lats[c] = lat
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := firstErr.Load(); err != nil {
		b.Fatal(*err)
	}
	reportRate(b, "facts/s")
	reportLatency(b, slices.Concat(lats...))
}

// BenchmarkAppendFactsStream: one client streaming b.N durable appends of
// 200-byte payloads over AppendFacts, sending without waiting while it reads
// the acknowledgements, which come in order, each once its fact is durable.
func BenchmarkAppendFactsStream(b *testing.B) {
	bn := startNodeB(b)
	conn := dialN(b, bn.sock, 1)[0]
	js := journalv1.NewJournalServiceClient(conn)
	req := &journalv1.AppendFactsRequest{TypeId: factType, Payload: payload(b)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ResetTimer()
	s, err := js.AppendFacts(ctx)
	if err != nil {
		b.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() {
		for range b.N {
			if err := s.Send(req); err != nil {
				sent <- err
				return
			}
		}
		sent <- s.CloseSend()
	}()
	for i := range b.N {
		ack, err := s.Recv()
		if err != nil {
			b.Fatalf("ack %d: %v", i, err)
		}
		if ack.GetIndex() != uint64(i) {
			b.Fatalf("ack %d has index %d", i, ack.GetIndex())
		}
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		b.Fatalf("after the last ack: %v", err)
	}
	b.StopTimer()
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
	reportRate(b, "facts/s")
}

// counterFixture is a node holding one counter object with counterIncrs
// increments, built once per test binary run and shared by every invocation
// of BenchmarkCounterGetAfter100k.
var counterFixture struct {
	once  sync.Once
	sock  string
	err   error
	build time.Duration
}

func buildCounter() {
	f := &counterFixture
	bn, err := startNode()
	if err != nil {
		f.err = err
		return
	}
	shared.mu.Lock()
	shared.stops = append(shared.stops, bn.stop)
	shared.mu.Unlock()
	f.sock = bn.sock

	const nconns = 4
	var conns []*grpc.ClientConn
	for range nconns {
		c, err := dial(bn.sock)
		if err != nil {
			f.err = err
			return
		}
		defer c.Close()
		conns = append(conns, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t0 := time.Now()
	var (
		next     atomic.Int64
		firstErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	for w := range counterBuilds {
		cs := crdtv1.NewCrdtServiceClient(conns[w%nconns])
		wg.Go(func() {
			req := &crdtv1.UpdateRequest{Name: counterName, Op: &crdtv1.UpdateRequest_CounterAdd{CounterAdd: &crdtv1.CounterAdd{Delta: 1}}}
			for next.Add(1) <= counterIncrs {
				if _, err := cs.Update(ctx, req, grpc.WaitForReady(true)); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	f.build = time.Since(t0)
	if err := firstErr.Load(); err != nil {
		f.err = fmt.Errorf("building the counter: %w", *err)
		return
	}
	resp, err := crdtv1.NewCrdtServiceClient(conns[0]).Get(ctx, &crdtv1.GetRequest{Name: counterName})
	if err != nil {
		f.err = err
		return
	}
	if o := resp.GetObject(); o.GetCounter() != counterIncrs || o.GetUpdates() != counterIncrs {
		f.err = errors.New("counter built wrong: " + o.String())
	}
}

// BenchmarkCounterGetAfter100k: CrdtService.Get of a counter that has had
// 100,000 increments (each a fact in the journal). Building it is setup,
// done once and not timed.
func BenchmarkCounterGetAfter100k(b *testing.B) {
	counterFixture.once.Do(func() {
		buildCounter()
		if counterFixture.err == nil {
			b.Logf("setup: %d counter increments by %d clients in %v (%.0f updates/s)", counterIncrs, counterBuilds,
				counterFixture.build.Round(time.Millisecond), counterIncrs/counterFixture.build.Seconds())
		}
	})
	if counterFixture.err != nil {
		b.Fatal(counterFixture.err)
	}
	conn := dialN(b, counterFixture.sock, 1)[0]
	cs := crdtv1.NewCrdtServiceClient(conn)
	req := &crdtv1.GetRequest{Name: counterName}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		resp, err := cs.Get(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		if resp.GetObject().GetCounter() != counterIncrs {
			b.Fatalf("counter = %d, want %d", resp.GetObject().GetCounter(), counterIncrs)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/op")
	reportLatency(b, lat)
}
