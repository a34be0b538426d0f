package bench

// Convergence of many devices (issue 13, "Figures"): 20 aurad processes on
// loopback form one account, 1,000 facts are written at random devices, and
// the benchmark times how long after the last write every device holds
// every fact, and counts the bytes all of them put on the wire for it.
//
//	go test -run '^$' -bench SyncConvergence -benchtime 1x -timeout 30m ./bench/

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	treev1 "github.com/aura-p2p/aura/api/proto/aura/tree/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

const (
	convergeNodesEnv = "AURA_BENCH_CONVERGE_NODES"
	convergeFactsEnv = "AURA_BENCH_CONVERGE_FACTS"
	// convergeInvitersEnv=random has each device join with a code from a
	// random device that joined before it, instead of the first device's.
	convergeInvitersEnv = "AURA_BENCH_CONVERGE_INVITERS"
	// convergeWriters write the facts at once, each at a random device.
	convergeWriters = 8
	// convergeGuard bounds the wait for every device to hold every fact.
	convergeGuard = 2 * time.Minute
	// convergeQuiet is how long the account is left alone after the last
	// device joined (address facts, the joins' own reconciliations) and
	// after convergence (late acknowledgements, duplicate pushes), so the
	// byte count holds the whole of the writes' traffic and nothing else.
	convergeQuiet = 3 * time.Second
)

// convergeRun is what one run measured.
type convergeRun struct {
	// converged is from the last write's acknowledgement until the last
	// device holds the last fact it lacked.
	converged time.Duration
	// spread is, per fact, from its write's acknowledgement until every
	// device holds it.
	spread []time.Duration
	// wireBytes is every daemon's envelope bytes sent from just before the
	// writes until convergeQuiet after convergence; ideal is each fact's
	// encoding delivered once to every other device.
	wireBytes, ideal uint64
}

// BenchmarkSyncConvergence: AURA_BENCH_CONVERGE_NODES daemons (default 20)
// join one account one after another, each with a code from the first
// device (AURA_BENCH_CONVERGE_INVITERS=random: from a random device that
// joined before it, so the first addresses each learns form a random tree);
// the account's published addresses then let every device reach every
// other.
// AURA_BENCH_CONVERGE_FACTS facts (default 1,000) of 200 bytes are written,
// by convergeWriters clients at once, each fact at a random device; every
// device's WatchFacts stream times each fact's arrival.
func BenchmarkSyncConvergence(b *testing.B) {
	n, facts := envInt(b, convergeNodesEnv, 20), envInt(b, convergeFactsEnv, 1000)
	aurad, auractl := buildSyncBinaries(b)
	b.StopTimer()
	var conv time.Duration
	var spread []time.Duration
	var wire, ideal uint64
	for i := range b.N {
		r := convergeOnce(b, n, facts, uint64(i), aurad, auractl)
		conv += r.converged
		spread = append(spread, r.spread...)
		wire += r.wireBytes
		ideal += r.ideal
	}
	slices.Sort(spread)
	ms := func(d time.Duration) float64 { return d.Seconds() * 1000 }
	b.ReportMetric(ms(conv)/float64(b.N), "converged-ms")
	b.ReportMetric(ms(spread[len(spread)/2]), "spread-p50-ms")
	b.ReportMetric(ms(spread[len(spread)*99/100]), "spread-p99-ms")
	b.ReportMetric(float64(wire)/float64(ideal), "bytes/ideal")
	b.ReportMetric(float64(wire)/float64(b.N*facts*(n-1)), "B/delivery")
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 {
		b.Fatalf("%s=%q: want a number ≥ 2", name, v)
	}
	return n
}

func convergeOnce(b *testing.B, n, facts int, seed uint64, aurad, auractl string) convergeRun {
	b.Helper()
	work, err := os.MkdirTemp(os.Getenv(benchDirEnv), "acv")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(work) })
	rng := rand.New(rand.NewPCG(seed, 13))
	ctx := context.Background()
	ds := make([]*daemon, n)
	defer func() {
		if b.Failed() {
			for _, d := range ds {
				if d != nil {
					b.Log(d.logTail())
				}
			}
		}
	}()
	for i := range ds {
		ds[i] = newDaemon(b, fmt.Sprint("D", i), work, aurad, auractl)
	}
	account := ds[0].authority(ctx)
	randomInviters := os.Getenv(convergeInvitersEnv) == "random"
	for i := 1; i < n; i++ {
		inviter := ds[0]
		if randomInviters {
			inviter = ds[rng.IntN(i)]
		}
		code, err := treev1.NewTreeServiceClient(inviter.conn).InviteDevice(ctx, &treev1.InviteDeviceRequest{})
		if err != nil {
			b.Fatalf("%s: InviteDevice: %v", inviter.name, err)
		}
		if _, err := treev1.NewTreeServiceClient(ds[i].conn).JoinAccount(ctx, &treev1.JoinAccountRequest{Code: code.GetCode()}); err != nil {
			b.Fatalf("%s: JoinAccount with %s's code: %v", ds[i].name, inviter.name, err)
		}
		jctx, cancel := context.WithTimeout(ctx, enrollGuard)
		_, err = pollUntil(jctx, time.Now(), answersAs(ds[i], account))
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		ds[i].redial()
	}
	for _, d := range ds {
		jctx, cancel := context.WithTimeout(ctx, enrollGuard)
		_, err := pollUntil(jctx, time.Now(), showsDevices(d, n))
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d devices in account %s", n, account)
	time.Sleep(convergeQuiet)

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watches := make([]*arrivals, n)
	for i, d := range ds {
		watches[i] = watchArrivals(wctx, b, d)
	}
	before := wireSent(ctx, b, ds)

	// The writes: each fact at a random device, convergeWriters at a time.
	acked := make(map[string]time.Time, facts)
	var (
		mu       sync.Mutex
		next     int
		firstErr error
		wg       sync.WaitGroup
		sample   string
	)
	p := make([]byte, 200)
	picks := make([]int, facts)
	for i := range picks {
		picks[i] = rng.IntN(n)
	}
	b.StartTimer()
	for range convergeWriters {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= facts {
					return
				}
				d := ds[picks[i]]
				resp, err := journalv1.NewJournalServiceClient(d.conn).AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: factType, Payload: p})
				now := time.Now()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s: AppendFact: %w", d.name, err)
				}
				if err == nil {
					acked[resp.GetId()] = now
					sample = resp.GetId()
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	var last time.Time
	for _, t := range acked {
		last = later(last, t)
	}
	gctx, cancel := context.WithTimeout(ctx, convergeGuard)
	defer cancel()
	var done time.Time
	for i, w := range watches {
		t, err := w.allOf(gctx, acked)
		if err != nil {
			b.Fatalf("%s: %v", ds[i].name, err)
		}
		done = later(done, t)
	}
	b.StopTimer()
	r := convergeRun{converged: max(0, done.Sub(last))}
	for id, t := range acked {
		var everywhere time.Time
		for _, w := range watches {
			everywhere = later(everywhere, w.at(id))
		}
		r.spread = append(r.spread, max(0, everywhere.Sub(t)))
	}
	time.Sleep(convergeQuiet)
	r.wireBytes = wireSent(ctx, b, ds) - before
	r.ideal = uint64(facts*(n-1)) * signedSize(ctx, b, ds[0], sample)
	stopWatch()
	b.Logf("last write to convergence %v; %d envelope bytes sent in all, %.2f× the ideal %d (each fact's %d-byte encoding once to each of %d other devices)",
		r.converged.Round(time.Millisecond), r.wireBytes, float64(r.wireBytes)/float64(r.ideal), r.ideal, r.ideal/uint64(facts*(n-1)), n-1)
	for _, d := range ds {
		d.stop()
	}
	for _, d := range ds {
		if lines := d.logErrors(); len(lines) > 0 {
			b.Errorf("%s logged errors:\n%v", d.name, lines)
		}
	}
	os.RemoveAll(work)
	return r
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// arrivals is when each fact reached one daemon, by its WatchFacts stream.
type arrivals struct {
	mu     sync.Mutex
	seen   map[string]time.Time
	err    error
	change chan struct{} // closed and replaced on every arrival
}

// watchArrivals follows d's facts from now on.
func watchArrivals(ctx context.Context, b *testing.B, d *daemon) *arrivals {
	b.Helper()
	a := &arrivals{seen: map[string]time.Time{}, change: make(chan struct{})}
	stream, err := journalv1.NewJournalServiceClient(d.conn).WatchFacts(ctx, &journalv1.WatchFactsRequest{FromNow: true})
	if err != nil {
		b.Fatalf("%s: WatchFacts: %v", d.name, err)
	}
	// The stream is open once its headers are in: facts committed after
	// this are streamed.
	if _, err := stream.Header(); err != nil {
		b.Fatalf("%s: WatchFacts: %v", d.name, err)
	}
	go func() {
		for {
			resp, err := stream.Recv()
			now := time.Now()
			a.mu.Lock()
			if err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					a.err = err
				}
			} else {
				a.seen[resp.GetFact().GetId()] = now
			}
			close(a.change)
			a.change = make(chan struct{})
			a.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return a
}

// allOf waits until every id of want arrived and returns when the last did.
func (a *arrivals) allOf(ctx context.Context, want map[string]time.Time) (time.Time, error) {
	for {
		a.mu.Lock()
		var last time.Time
		missing := 0
		for id := range want {
			t, ok := a.seen[id]
			if !ok {
				missing++
			}
			last = later(last, t)
		}
		err, change := a.err, a.change
		a.mu.Unlock()
		if missing == 0 {
			return last, nil
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("watch ended with %d facts missing: %w", missing, err)
		}
		select {
		case <-change:
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%d of %d facts missing: %w", missing, len(want), ctx.Err())
		}
	}
}

func (a *arrivals) at(id string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[id]
}

// wireSent is the envelope bytes all the daemons have sent.
func wireSent(ctx context.Context, b *testing.B, ds []*daemon) uint64 {
	b.Helper()
	var sum uint64
	for _, d := range ds {
		st, err := nodev1.NewNodeServiceClient(d.conn).GetStatus(ctx, &nodev1.GetStatusRequest{})
		if err != nil {
			b.Fatalf("%s: GetStatus: %v", d.name, err)
		}
		sum += st.GetTransport().GetBytesSent()
	}
	return sum
}

// signedSize is the length of fact id's signed encoding, what a device
// must receive at least once to hold it.
func signedSize(ctx context.Context, b *testing.B, d *daemon, id string) uint64 {
	b.Helper()
	resp, err := journalv1.NewJournalServiceClient(d.conn).GetFact(ctx, &journalv1.GetFactRequest{Id: id})
	if err != nil {
		b.Fatalf("%s: GetFact %s: %v", d.name, id, err)
	}
	f := resp.GetFact()
	ns, err := core.ParseNamespace(f.GetNamespace())
	if err != nil {
		b.Fatal(err)
	}
	author, err := core.ParseDeviceID(f.GetAuthor())
	if err != nil {
		b.Fatal(err)
	}
	body, err := journal.EncodeBody(&journal.Fact{
		Namespace: ns, TypeID: f.GetTypeId(), SchemaVersion: f.GetSchemaVersion(), Payload: f.GetPayload(),
		Author: author, Lamport: f.GetLamport(), CreatedAtMs: timeMs(f.GetCreatedAt()),
	})
	if err != nil {
		b.Fatal(err)
	}
	sf := journal.SignedFact{Body: body, Signature: f.GetSignature()}
	return uint64(len(sf.Encode()))
}

func timeMs(t *timestamppb.Timestamp) int64 { return t.AsTime().UnixMilli() }
