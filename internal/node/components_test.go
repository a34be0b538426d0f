package node

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/crdt"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/crdtrpc"
)

// events records what test components did, in order.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, s)
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got)
}

// probe is a component that records its start and stop; its stop checks
// that the journal is still open.
func probe(name string, ev *events) component {
	return component{
		name:  name,
		start: func(context.Context, *Node) error { ev.add("start " + name); return nil },
		stop: func(n *Node) error {
			_, err := n.journal.Stats(context.Background())
			if err != nil {
				ev.add("stop " + name + " without journal")
				return err
			}
			ev.add("stop " + name)
			return nil
		},
	}
}

func TestComponentWiringFailsTheStartNamingBoth(t *testing.T) {
	ok := func(*journal.SignedFact) error { return nil }
	boom := errors.New("boom")
	tests := []struct {
		name string
		// extra are appended to the daemon's components.
		extra func(ev *events) []component
		// want are substrings of the one error line.
		want   []string
		is     error
		events []string
	}{
		{
			name: "validator in two components",
			extra: func(*events) []component {
				return []component{
					{name: "a", validators: map[string]journal.Validator{"app.x/v1": ok}},
					{name: "b", validators: map[string]journal.Validator{"app.x/v1": ok}},
				}
			},
			want: []string{`"a"`, `"b"`, `"app.x/v1"`}, is: core.ErrInternal,
		},
		{
			name: "validator of a daemon component",
			extra: func(*events) []component {
				var t string
				for k := range crdt.Validators() {
					t = k
				}
				return []component{{name: "mine", validators: map[string]journal.Validator{t: ok}}}
			},
			want: []string{`"crdt"`, `"mine"`}, is: core.ErrInternal,
		},
		{
			name:  "component name taken",
			extra: func(*events) []component { return []component{{name: "journal"}} },
			want:  []string{`two components are named "journal"`}, is: core.ErrInternal,
		},
		{
			name: "reducer in two components",
			extra: func(*events) []component {
				return []component{{name: "again", reducers: []journal.Reducer{crdt.Reducer()}}}
			},
			want: []string{`"crdt"`, `"again"`, "reducer"}, is: core.ErrInternal,
		},
		{
			name: "service in two components",
			extra: func(ev *events) []component {
				c := probe("twin", ev)
				c.services = func(n *Node) []service { return []service{crdtrpc.New(n.objects, n.defaultNS)} }
				return []component{c}
			},
			want: []string{`"crdt"`, `"twin"`, "gRPC service"}, is: core.ErrInternal,
			// It had started, so it is stopped again, while the journal is open.
			events: []string{"start twin", "stop twin"},
		},
		{
			name: "permission entry in two components",
			extra: func(*events) []component {
				return []component{{name: "perm", permissions: crdtrpc.Permissions()}}
			},
			want: []string{`"crdt"`, `"perm"`, "permission entry"}, is: core.ErrInternal,
		},
		{
			name: "permission entry of a standard service",
			extra: func(*events) []component {
				return []component{{name: "perm", permissions: rpc.Permissions{"/grpc.health.v1.Health/Check": rpc.Read}}}
			},
			want: []string{`"grpc"`, `"perm"`}, is: core.ErrInternal,
		},
		{
			name: "start fails",
			extra: func(ev *events) []component {
				return []component{
					probe("before", ev),
					{name: "broken", start: func(context.Context, *Node) error { return boom }},
					probe("after", ev),
				}
			},
			want: []string{"start broken: boom"}, is: boom,
			// Only what started is stopped, in reverse, before the journal closes.
			events: []string{"start before", "stop before"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			ev := &events{}
			comps := append(daemonComponents(), tt.extra(ev)...)
			n, err := start(context.Background(), cfg, Deps{Logger: zaptest.NewLogger(t), Notify: func(string) {}}, comps)
			if err == nil {
				n.Stop()
				t.Fatal("started")
			}
			line := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("error %q does not contain %q", line, w)
				}
			}
			if strings.Contains(line, "\n") {
				t.Errorf("error spans lines: %q", line)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if got := ev.list(); !slices.Equal(got, tt.events) {
				t.Errorf("events %q, want %q", got, tt.events)
			}
			// Everything is released: the data dir lock, the journal, the
			// transport and the socket; a node starts on the same dir.
			startNode(t, cfg).Stop()
		})
	}
}

func TestComponentsStopInReverseBeforeTheJournalCloses(t *testing.T) {
	cfg := testConfig(t)
	ev := &events{}
	looped := make(chan struct{})
	loop := probe("loop", ev)
	loop.loops = []func(context.Context, *Node){func(ctx context.Context, _ *Node) {
		close(looped)
		<-ctx.Done()
		ev.add("loop ended")
	}}
	comps := append(daemonComponents(), probe("first", ev), loop)
	n, err := start(context.Background(), cfg, Deps{Logger: zaptest.NewLogger(t), Notify: func(string) {}}, comps)
	if err != nil {
		t.Fatal(err)
	}
	<-looped
	n.Stop()
	want := []string{"start first", "start loop", "loop ended", "stop loop", "stop first"}
	if got := ev.list(); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}
