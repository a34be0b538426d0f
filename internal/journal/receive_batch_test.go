package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/aura-p2p/aura/internal/core"
)

// checkedType is refused by receiveOptions' validator when its payload is
// "bad".
const checkedType = "app.checked/v1"

func receiveOptions() Options {
	return Options{
		Reducers: []Reducer{sumReducer{}, concatReducer{}},
		Validators: map[string]Validator{checkedType: func(f *SignedFact) error {
			if string(f.Payload) == "bad" {
				return fmt.Errorf("payload is bad: %w", core.ErrInvalidArgument)
			}
			return nil
		}},
	}
}

func forged(sf *SignedFact) *SignedFact {
	f := *sf
	f.Signature = bytes.Clone(sf.Signature)
	f.Signature[7] ^= 1
	return &f
}

// receiveUniverse signs the facts the property test draws from: a context
// founded by a, a rival genesis of it, participants facts that admit b (by
// a) and then c (by b), and one by x, who is never admitted; facts of every
// author and of types with a reducer, a validator or none; facts of a
// namespace whose genesis never comes; a fact of an unknown reserved type;
// forgeries.
func receiveUniverse(t *testing.T) []*SignedFact {
	a, b, c, x := seededSigner(1), seededSigner(2), seededSigner(3), seededSigner(4)
	g, ns := genesisFact(t, core.NamespaceContext, a, a)
	rival, err := SignFact(a, Fact{Namespace: ns, TypeID: TypeGenesis, Author: a.DeviceID(), Lamport: 1, Payload: g.Payload, CreatedAtMs: 7})
	if err != nil {
		t.Fatal(err)
	}
	_, unknown := genesisFact(t, core.NamespaceContext, a, a, x)
	out := []*SignedFact{
		g, rival,
		signed(t, a, ns, TypeContextParticipants, 2, participantsPayload(t, b)),
		signed(t, b, ns, TypeContextParticipants, 3, participantsPayload(t, c)),
		signed(t, x, ns, TypeContextParticipants, 3, participantsPayload(t, c)),
		signed(t, a, ns, checkedType, 4, []byte("ok")),
		signed(t, b, ns, checkedType, 4, []byte("bad")),
		signed(t, a, ns, "aura.nope/v1", 4, nil),
		signed(t, a, unknown, "chat", 2, []byte("early")),
		signed(t, a, unknown, "app.sum/v1", 3, []byte("9")),
	}
	for i, s := range []*KeySigner{a, b, c, x} {
		for l := range uint64(3) {
			out = append(out,
				signed(t, s, ns, "chat", 2+2*l, []byte{byte(i), byte(l)}),
				signed(t, s, ns, "app.sum/v1", 3+l, []byte(fmt.Sprint(i+1))),
				signed(t, s, ns, "app.cat/v1", 4-l, []byte{'a' + byte(i), '0' + byte(l)}))
		}
	}
	for _, i := range []int{0, 2, 3, 5, 12} {
		out = append(out, forged(out[i]))
	}
	short := *out[13]
	short.Signature = short.Signature[:10]
	return append(out, &short)
}

// journalState is what a journal holds, in a form to compare: every stored
// fact with its seq, in commit order; members; reduced states; the orphan
// pool.
type journalState struct {
	Log              []string
	Members          []core.DeviceID
	Sum, Cat         string
	Orphans, Evicted uint64
}

func stateOf(t *rapid.T, j *Journal, ns core.Namespace) journalState {
	ctx := context.Background()
	var st journalState
	for tok := ""; ; {
		page, next, err := j.List(ctx, ListQuery{PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, sf := range page {
			st.Log = append(st.Log, fmt.Sprintf("%d %s", sf.Seq, sf.ID))
		}
		if tok = next; tok == "" {
			break
		}
	}
	st.Members, _ = j.Members(ctx, ns)
	for _, r := range []struct {
		name string
		key  string
		dst  *string
	}{{"test.sum", "total", &st.Sum}, {"test.concat", "log", &st.Cat}} {
		v, _, err := j.State(ctx, r.name, ns, []byte(r.key))
		if err != nil {
			t.Fatal(err)
		}
		*r.dst = fmt.Sprintf("%x", v)
	}
	st.Orphans, _, st.Evicted = j.OrphanStats()
	return st
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ReceiveBatch, or batches in flight on a Receiver, give each fact the
// result Receive gives it and leave the journal as one-by-one Receives do,
// down to the seq of every fact.
func TestReceiveBatchMatchesReceive(t *testing.T) {
	universe := receiveUniverse(t)
	ns := universe[0].Namespace
	peer := seededSigner(50).DeviceID()
	ctx := context.Background()
	dir := t.TempDir()
	run := 0
	open := func(t *rapid.T) *Journal {
		run++
		opts := receiveOptions()
		opts.Path, opts.NoSync = filepath.Join(dir, fmt.Sprintf("j%d.db", run)), true
		opts.Clock = core.NewManualClock(time.UnixMilli(1_700_000_000_000))
		j, err := Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	rapid.Check(t, func(t *rapid.T) {
		pick := rapid.SliceOfN(rapid.SampledFrom(universe), 0, 8)
		before := pick.Draw(t, "before")
		batch := rapid.SliceOfN(rapid.SampledFrom(universe), 0, 3*verifyChunk).Draw(t, "batch")
		// Where the batch is cut into batches in flight on one Receiver;
		// none: one ReceiveBatch.
		cuts := rapid.SliceOfN(rapid.IntRange(0, len(batch)), 0, 3).Draw(t, "cuts")
		slices.Sort(cuts)

		seq, bat := open(t), open(t)
		defer seq.Close()
		defer bat.Close()
		for _, sf := range before {
			_, err1 := seq.Receive(ctx, peer, sf)
			_, err2 := bat.Receive(ctx, peer, sf)
			if errText(err1) != errText(err2) {
				t.Fatalf("setup: %v vs %v", err1, err2)
			}
		}
		want := make([]ReceiveResult, len(batch))
		for i, sf := range batch {
			want[i].Received, want[i].Err = seq.Receive(ctx, peer, sf)
			if errors.Is(want[i].Err, core.ErrUnavailable) || errors.Is(want[i].Err, core.ErrDataLoss) {
				t.Fatalf("fact %d: %v", i, want[i].Err)
			}
		}

		var got []ReceiveResult
		if len(cuts) == 0 {
			var err error
			if got, err = bat.ReceiveBatch(ctx, peer, batch); err != nil {
				t.Fatal(err)
			}
		} else {
			rc := bat.NewReceiver(peer)
			var inFlight []*PendingBatch
			lo := 0
			for _, hi := range append(cuts, len(batch)) {
				inFlight = append(inFlight, rc.Start(ctx, batch[lo:hi]))
				lo = hi
			}
			for _, p := range inFlight {
				rs, err := p.Wait(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rs...)
			}
		}
		if len(got) != len(batch) {
			t.Fatalf("%d results for %d facts", len(got), len(batch))
		}
		for i := range batch {
			if got[i].Received != want[i].Received || errText(got[i].Err) != errText(want[i].Err) {
				t.Fatalf("fact %d: batch %+v (%v), one by one %+v (%v)", i, got[i].Received, got[i].Err, want[i].Received, want[i].Err)
			}
		}
		if s1, s2 := stateOf(t, seq, ns), stateOf(t, bat, ns); !reflectEqual(s1, s2) {
			t.Fatalf("state after one by one:\n%+v\nafter the batch:\n%+v", s1, s2)
		}
	})
}

func reflectEqual(a, b journalState) bool {
	return slices.Equal(a.Log, b.Log) && slices.Equal(a.Members, b.Members) &&
		a.Sum == b.Sum && a.Cat == b.Cat && a.Orphans == b.Orphans && a.Evicted == b.Evicted
}

// A batch that founds a context, admits members and carries their facts
// stores them all, none orphaned; received the other way round, the facts
// wait for the facts after them and are stored all the same.
func TestReceiveBatchAdmitsWithinTheBatch(t *testing.T) {
	ctx := context.Background()
	a, b, c := seededSigner(1), seededSigner(2), seededSigner(3)
	peer := seededSigner(50).DeviceID()
	g, ns := genesisFact(t, core.NamespaceContext, a, a)
	facts := []*SignedFact{
		g,
		signed(t, a, ns, TypeContextParticipants, 2, participantsPayload(t, b)),
		signed(t, b, ns, "chat", 3, []byte("b")),
		signed(t, b, ns, TypeContextParticipants, 4, participantsPayload(t, c)),
		signed(t, c, ns, "chat", 5, []byte("c")),
	}
	for _, reversed := range []bool{false, true} {
		t.Run(fmt.Sprint("reversed=", reversed), func(t *testing.T) {
			in := slices.Clone(facts)
			if reversed {
				slices.Reverse(in)
			}
			j := openWith(t, Options{})
			rs, err := j.ReceiveBatch(ctx, peer, in)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rs {
				if r.Err != nil || r.Duplicate || r.Orphaned != (reversed && i < len(in)-1) {
					t.Fatalf("fact %d: %+v", i, r)
				}
				if _, err := j.Get(ctx, in[i].ID); err != nil {
					t.Fatalf("fact %d not stored: %v", i, err)
				}
			}
			if got, _ := j.Members(ctx, ns); !slices.Equal(got, sortedDevices(a, b, c)) {
				t.Fatalf("members %v", got)
			}
			if n, _, _ := j.OrphanStats(); n != 0 {
				t.Fatalf("%d orphans left", n)
			}
		})
	}
}

// Each refusal is the fact's own, says why with the sentinels sync counts
// by, and leaves its neighbours alone.
func TestReceiveBatchRefusals(t *testing.T) {
	ctx := context.Background()
	a, x := seededSigner(1), seededSigner(4)
	peer := seededSigner(50).DeviceID()
	j := openWith(t, receiveOptions())
	g, ns := genesisFact(t, core.NamespaceContext, a, a)
	if _, err := j.Commit(ctx, Txn{Facts: []*SignedFact{g}}); err != nil {
		t.Fatal(err)
	}
	ok := signed(t, a, ns, "chat", 2, []byte("ok"))
	short := *signed(t, a, ns, "chat", 3, []byte("short"))
	short.Signature = short.Signature[:63]
	rival, err := SignFact(a, Fact{Namespace: ns, TypeID: TypeGenesis, Author: a.DeviceID(), Lamport: 1, Payload: g.Payload, CreatedAtMs: 7})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sf   *SignedFact
		want []error // all of which the result's Err must wrap; none: stored
		not  error   // which it must not
	}{
		{"valid", ok, nil, nil},
		{"forged", forged(signed(t, a, ns, "chat", 3, []byte("f"))), []error{ErrBadSignature, core.ErrInvalidArgument}, nil},
		{"signature cut short", &short, []error{ErrBadSignature}, nil},
		{"validator refuses", signed(t, a, ns, checkedType, 4, []byte("bad")), []error{core.ErrInvalidArgument}, ErrBadSignature},
		{"unknown reserved type", signed(t, a, ns, "aura.nope/v1", 4, nil), []error{core.ErrInvalidArgument}, ErrBadSignature},
		{"second genesis", rival, []error{core.ErrAlreadyExists}, ErrBadSignature},
		{"no fact", nil, []error{core.ErrInvalidArgument}, ErrBadSignature},
		{"valid after the refusals", signed(t, x, ns, "chat", 5, nil), nil, nil},
	}
	batch := make([]*SignedFact, len(tests))
	for i, tc := range tests {
		batch[i] = tc.sf
	}
	rs, err := j.ReceiveBatch(ctx, peer, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		r := rs[i]
		for _, w := range tc.want {
			if !errors.Is(r.Err, w) {
				t.Errorf("%s: %v does not wrap %v", tc.name, r.Err, w)
			}
		}
		if tc.not != nil && errors.Is(r.Err, tc.not) {
			t.Errorf("%s: %v wraps %v", tc.name, r.Err, tc.not)
		}
		if tc.want == nil && r.Err != nil {
			t.Errorf("%s: refused: %v", tc.name, r.Err)
		}
		if tc.want != nil && r.Received != (Received{}) {
			t.Errorf("%s: refused but %+v", tc.name, r.Received)
		}
	}
	if _, err := j.Get(ctx, ok.ID); err != nil {
		t.Fatalf("the valid fact: %v", err)
	}
	// x is no member: waiting, not refused.
	if !rs[len(rs)-1].Orphaned {
		t.Fatalf("x's fact: %+v", rs[len(rs)-1])
	}
	if st, err := j.Stats(ctx); err != nil || st.Facts != 2 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}

// The call's error is for the call: a closed journal, an ended context, a
// failed store; never a fact's refusal.
func TestReceiveBatchCallErrors(t *testing.T) {
	ctx := context.Background()
	a := seededSigner(1)
	peer := seededSigner(50).DeviceID()
	g, ns := genesisFact(t, core.NamespaceContext, a, a)
	facts := []*SignedFact{g}
	for l := range uint64(2 * verifyChunk) {
		facts = append(facts, signed(t, a, ns, "chat", 2+l, nil))
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := openWith(t, Options{}).ReceiveBatch(cancelled, peer, facts); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: %v", err)
	}

	closed := openWith(t, Options{})
	closed.Close()
	if _, err := closed.ReceiveBatch(ctx, peer, facts); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed journal: %v", err)
	}

	failed := openWith(t, Options{})
	failed.failure.set(failed.log, fmt.Errorf("test damage: %w", ErrDamaged))
	rs, err := failed.ReceiveBatch(ctx, peer, facts)
	if !errors.Is(err, ErrStoreFailed) || rs != nil {
		t.Fatalf("failed store: %v, %d results", err, len(rs))
	}
}

// Batches in flight on one Receiver reach the writer in the order they were
// started, however long each takes to verify: facts that a previous
// batch's last fact admits are inserted, not orphaned.
func TestReceiverKeepsBatchesInOrder(t *testing.T) {
	ctx := context.Background()
	a, b := seededSigner(1), seededSigner(2)
	peer := seededSigner(50).DeviceID()
	j := openWith(t, Options{})
	other := found(t, j, a, core.NamespaceAuthority, a)
	g, ns := genesisFact(t, core.NamespaceContext, a, a, b)
	// The first batch takes long to verify and founds ns last; the ones
	// after it are one chunk each, verified at once.
	var first []*SignedFact
	for l := range uint64(8 * verifyChunk) {
		first = append(first, signed(t, a, other, "chat", 2+l, nil))
	}
	first = append(first, g)
	rc := j.NewReceiver(peer)
	inFlight := []*PendingBatch{rc.Start(ctx, first)}
	for l := range uint64(4) {
		inFlight = append(inFlight, rc.Start(ctx, []*SignedFact{signed(t, b, ns, "chat", 2+l, nil)}))
	}
	for i := len(inFlight) - 1; i >= 0; i-- {
		rs, err := inFlight[i].Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k, r := range rs {
			if r.Err != nil || r.Orphaned || r.Duplicate {
				t.Fatalf("batch %d fact %d: %+v", i, k, r)
			}
		}
	}
}

// bootstrapFacts returns a context genesis by a followed by n-1 facts of a
// with 200-byte payloads, signed on every core.
func bootstrapFacts(tb testing.TB, a *KeySigner, n int) []*SignedFact {
	tb.Helper()
	payload, err := (&Genesis{Kind: core.NamespaceContext, Threshold: 1, Members: []Member{{Device: a.DeviceID()}}}).Encode()
	if err != nil {
		tb.Fatal(err)
	}
	ns := NamespaceOf(core.NamespaceContext, payload)
	out := make([]*SignedFact, n)
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for w := range errs {
		wg.Go(func() {
			for i := w; i < n; i += len(errs) {
				f := Fact{Namespace: ns, TypeID: TypeGenesis, Author: a.DeviceID(), Lamport: 1, Payload: payload, CreatedAtMs: 1_700_000_000_000}
				if i > 0 {
					p := make([]byte, 200)
					copy(p, fmt.Sprintf("message %d", i))
					f.TypeID, f.Lamport, f.Payload = "chat", uint64(i+1), p
				}
				sf, err := SignFact(a, f)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = sf
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// BenchmarkReceiveBatch is a first sync: 100,000 facts of one author, in
// batches of 256 received one after another, into a new journal on disk with
// fsync on.
//
//	go test -run '^$' -bench 'ReceiveBatch|ReceiverInFlight|VerifyCeiling' -benchtime 1x ./internal/journal/
func BenchmarkReceiveBatch(b *testing.B) {
	benchBootstrap(b, func(ctx context.Context, j *Journal, peer core.DeviceID, batches [][]*SignedFact) {
		for _, batch := range batches {
			rs, err := j.ReceiveBatch(ctx, peer, batch)
			checkBootstrap(b, rs, err)
		}
	})
}

// BenchmarkReceiverInFlight is BenchmarkReceiveBatch with four batches in
// flight on a Receiver, so that verifying some overlaps the fsyncs of the
// others and commits take more facts each.
func BenchmarkReceiverInFlight(b *testing.B) {
	const window = 4
	benchBootstrap(b, func(ctx context.Context, j *Journal, peer core.DeviceID, batches [][]*SignedFact) {
		rc := j.NewReceiver(peer)
		var inFlight []*PendingBatch
		for _, batch := range batches {
			if len(inFlight) == window {
				rs, err := inFlight[0].Wait(ctx)
				checkBootstrap(b, rs, err)
				inFlight = inFlight[1:]
			}
			inFlight = append(inFlight, rc.Start(ctx, batch))
		}
		for _, p := range inFlight {
			rs, err := p.Wait(ctx)
			checkBootstrap(b, rs, err)
		}
	})
}

// BenchmarkVerifyCeiling verifies the facts of BenchmarkReceiveBatch on
// every core and stores nothing: the most any receive can reach here, and on
// a shared machine the share of it the others leave.
func BenchmarkVerifyCeiling(b *testing.B) {
	facts := bootstrapFacts(b, seededSigner(1), 100_000)
	out := make([]ReceiveResult, len(facts))
	j := &Journal{}
	b.ResetTimer()
	for range b.N {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for k := int(next.Add(1) - 1); k*verifyChunk < len(facts); k = int(next.Add(1) - 1) {
					lo, hi := k*verifyChunk, min((k+1)*verifyChunk, len(facts))
					j.checkFacts(facts[lo:hi], out[lo:hi], false)
				}
			})
		}
		wg.Wait()
		for i := range out {
			if out[i].Err != nil {
				b.Fatal(out[i].Err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(facts))/b.Elapsed().Seconds(), "facts/s")
}

func checkBootstrap(b *testing.B, rs []ReceiveResult, err error) {
	if err != nil {
		b.Fatal(err)
	}
	for i, r := range rs {
		if r.Err != nil || r.Orphaned || r.Duplicate {
			b.Fatalf("fact %d: %+v", i, r)
		}
	}
}

// benchBootstrap times receive taking 100,000 facts of one author in batches
// of 256 into a new journal on disk, fsync on, and reports facts/s and how
// the writer grouped them.
func benchBootstrap(b *testing.B, receive func(ctx context.Context, j *Journal, peer core.DeviceID, batches [][]*SignedFact)) {
	const total, size = 100_000, 256
	facts := bootstrapFacts(b, seededSigner(1), total)
	var batches [][]*SignedFact
	for lo := 0; lo < total; lo += size {
		batches = append(batches, facts[lo:min(lo+size, total)])
	}
	peer := seededSigner(50).DeviceID()
	ctx := context.Background()
	var commits commitCounter
	var cpu time.Duration
	var pages int64
	for range b.N {
		b.StopTimer()
		j, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "journal.db"), Observer: &commits})
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := cpuTime(b)
		b.StartTimer()
		receive(ctx, j, peer, batches)
		b.StopTimer()
		cpu += cpuTime(b) - cpu0
		st := j.db.Stats()
		pages += st.TxStats.GetWrite()
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "facts/s")
	b.ReportMetric(float64(total*b.N)/float64(commits.n), "facts/commit")
	b.ReportMetric(commits.took.Seconds()/float64(commits.n)*1e3, "ms/commit")
	// Pages written: the id index's random keys dirty about one page a
	// fact, whatever the commit's size.
	b.ReportMetric(float64(pages)/float64(total*b.N), "pages/fact")
	// The process's CPU time a fact: with the wall time it tells a shared
	// machine's other load from idle cores.
	b.ReportMetric(cpu.Seconds()*1e6/float64(total*b.N), "cpu-µs/fact")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// commitCounter counts group commits and the time they took.
type commitCounter struct {
	n    int
	took time.Duration
}

func (c *commitCounter) ObserveCommit(_, _ int, took time.Duration, _ error) {
	c.n++
	c.took += took
}
