package choreo

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestMain raises rapid's default of 100 cases: some projection mistakes
// (a loop restarting an enclosing one behind a role's back) need a few
// thousand random protocols to show. -rapid.checks still overrides.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		_ = flag.Set("rapid.checks", "3000")
	}
	os.Exit(m.Run())
}

// gen builds random well-formed protocols as syntax trees.
type gen struct {
	t      *rapid.T
	roles  []string
	labels int // counter for fresh branch labels
	loops  int
	stack  []string // enclosing loops, innermost last
	// free: choices inform a random receiver only, and anybody may act in a
	// branch; many such protocols are not realizable. Otherwise the decider
	// tells every role acting in the branch, so projection must succeed.
	free bool
}

func (g *gen) pick(name string, from []string) string {
	return from[rapid.IntRange(0, len(from)-1).Draw(g.t, name)]
}

func without(roles []string, r string) []string {
	var out []string
	for _, x := range roles {
		if x != r {
			out = append(out, x)
		}
	}
	return out
}

func (g *gen) message(active []string) *MessageStmt {
	from := g.pick("from", active)
	to := g.pick("to", without(active, from))
	m := &MessageStmt{From: from, To: to, Label: "m" + fmt.Sprint(rapid.IntRange(0, 2).Draw(g.t, "label"))}
	if rapid.IntRange(0, 3).Draw(g.t, "typed") == 0 {
		m.Type = "T"
	}
	return m
}

// block generates statements among the active roles (those that know which
// branch they are in). depth bounds nesting.
func (g *gen) block(active []string, depth int) []Stmt {
	n := rapid.IntRange(1, 3).Draw(g.t, "stmts")
	var out []Stmt
	for range n {
		kind := 0
		if depth < 3 {
			kind = rapid.IntRange(0, 3).Draw(g.t, "kind")
		}
		switch kind {
		case 2:
			out = append(out, g.choice(active, depth, nil))
		case 3:
			out = append(out, g.rec(active, depth))
		default:
			out = append(out, g.message(active))
		}
	}
	return out
}

// choice generates a choice. With loop set, its first branch continues the
// loop and the decider informs everybody active, so no role is left unsure
// whether the loop goes on.
func (g *gen) choice(active []string, depth int, loop *string) *ChoiceStmt {
	at := g.pick("at", active)
	others := without(active, at)
	var informed []string
	switch {
	case loop != nil && !g.free:
		informed = others
	case g.free && loop == nil:
		informed = []string{g.pick("tell", others)}
	default:
		for _, r := range others {
			if rapid.Bool().Draw(g.t, "inform") {
				informed = append(informed, r)
			}
		}
		if len(informed) == 0 {
			informed = []string{g.pick("tell", others)}
		}
	}
	inner := append([]string{at}, informed...)
	if g.free {
		inner = active
	}
	c := &ChoiceStmt{At: at}
	nb := rapid.IntRange(2, 3).Draw(g.t, "branches")
	for i := range nb {
		g.labels++
		label := fmt.Sprintf("C%d", g.labels)
		if loop != nil {
			if i == 0 {
				label = "Loop" + label
			} else {
				label = "Exit" + label
			}
		}
		b := &ChoiceBranch{Label: label, Explicit: true}
		for _, r := range informed {
			b.Body = append(b.Body, &MessageStmt{From: at, To: r, Label: label})
		}
		if rapid.Bool().Draw(g.t, "more") {
			b.Body = append(b.Body, g.block(inner, depth+1)...)
		}
		if loop != nil && i == 0 {
			// In free mode a loop may also restart an enclosing one, which
			// leaves the roles of the outer loop that are not told guessing
			// (projection must notice).
			target := *loop
			if g.free {
				target = g.pick("continue", g.stack)
			}
			b.Body = append(b.Body, &ContinueStmt{Name: target})
		}
		c.Branches = append(c.Branches, b)
	}
	return c
}

// rec generates `rec L { stmts; choice { Loop: ...; continue L } or { Exit: ... } }`.
func (g *gen) rec(active []string, depth int) *RecStmt {
	g.loops++
	name := fmt.Sprintf("L%d", g.loops)
	r := &RecStmt{Name: name}
	g.stack = append(g.stack, name)
	if rapid.Bool().Draw(g.t, "prefix") {
		r.Body = g.block(active, depth+1)
	}
	r.Body = append(r.Body, g.choice(active, depth+1, &name))
	g.stack = g.stack[:len(g.stack)-1]
	return r
}

func (g *gen) protocol() *File {
	n := rapid.IntRange(2, 4).Draw(g.t, "roles")
	p := &Protocol{Name: "Random"}
	for i := range n {
		name := fmt.Sprintf("R%d", i)
		g.roles = append(g.roles, name)
		p.Roles = append(p.Roles, Role{Name: name})
	}
	p.Body = g.block(g.roles, 0)
	return &File{Protocols: []*Protocol{p}}
}

// loopBudget is how many steps the scheduler lets loops run before it takes
// their exits whenever it can ("bounded unrolling").
const (
	loopBudget = 60
	maxSteps   = 5000
)

// runSession runs the machines of every role against each other over
// per-pair FIFO queues, choosing among enabled actions at random, and checks
// each event against the global protocol. It fails on a receive a machine
// does not expect, a deadlock, a message left unread, or a trace the global
// protocol does not allow.
func runSession(t *rapid.T, f *File, proj *Projection) {
	g := buildGlobal(f, proj.Protocol)
	machines := map[string]*Machine{}
	var roles []string
	for _, r := range proj.Roles {
		m, err := proj.Machine(r.Role)
		if err != nil {
			t.Fatal(err)
		}
		machines[r.Role] = m
		roles = append(roles, r.Role)
	}
	queues := map[[2]string][]string{}
	var trace []string
	type choice struct {
		role string
		a    Action
	}
	for step := 0; ; step++ {
		if step > maxSteps {
			t.Fatalf("no end after %d steps: %s", maxSteps, strings.Join(trace, " "))
		}
		var enabled []choice
		for _, r := range roles {
			m := machines[r]
			if from, ok := m.Receiving(); ok {
				q := queues[[2]string{from, r}]
				if len(q) > 0 {
					// Deliver whatever is at the head: the machine must
					// expect it.
					enabled = append(enabled, choice{r, Action{Kind: ActRecv, Peer: from, Label: q[0]}})
				}
				continue
			}
			for _, a := range m.Next() {
				enabled = append(enabled, choice{r, a})
			}
		}
		if step > loopBudget {
			// Prefer leaving loops, so that every run ends.
			var exits []choice
			for _, c := range enabled {
				if !strings.HasPrefix(c.a.Branch, "Loop") {
					exits = append(exits, c)
				}
			}
			if len(exits) > 0 {
				enabled = exits
			}
		}
		if len(enabled) == 0 {
			for _, r := range roles {
				if !machines[r].Done() {
					t.Fatalf("deadlock: %s waits for %v; trace %s", r, machines[r].Next(), strings.Join(trace, " "))
				}
			}
			for k, q := range queues {
				if len(q) > 0 {
					t.Fatalf("orphan messages %s -> %s: %v; trace %s", k[0], k[1], q, strings.Join(trace, " "))
				}
			}
			if !gFinished(g) {
				t.Fatalf("all roles done but the global protocol is not: trace %s", strings.Join(trace, " "))
			}
			return
		}
		c := enabled[rapid.IntRange(0, len(enabled)-1).Draw(t, "sched")]
		if err := machines[c.role].Step(c.a); err != nil {
			if !errors.Is(err, ErrViolation) {
				t.Fatalf("step error of the wrong kind: %v", err)
			}
			t.Fatalf("%v; trace %s", err, strings.Join(trace, " "))
		}
		var e event
		if c.a.Kind == ActSend {
			key := [2]string{c.role, c.a.Peer}
			queues[key] = append(queues[key], c.a.Label)
			e = event{send: true, from: c.role, to: c.a.Peer, label: c.a.Label}
			trace = append(trace, fmt.Sprintf("%s!%s:%s", c.role, c.a.Peer, c.a.Label))
		} else {
			key := [2]string{c.a.Peer, c.role}
			queues[key] = queues[key][1:]
			e = event{from: c.a.Peer, to: c.role, label: c.a.Label}
			trace = append(trace, fmt.Sprintf("%s?%s:%s", c.role, c.a.Peer, c.a.Label))
		}
		ng, ok := gStep(g, e)
		if !ok {
			t.Fatalf("event %s is not allowed by the global protocol; trace %s", trace[len(trace)-1], strings.Join(trace, " "))
		}
		g = ng
	}
}

// Realizable by construction: projection must succeed, and the projected
// machines must run to completion together, doing only what the global
// protocol allows.
func TestPropertyProjectedSessionsComplete(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		g := &gen{t: t}
		f0 := g.protocol()
		src := Format(f0)
		f, ps, err := Load([]byte(src))
		if err != nil && strings.Contains(err.Error(), "local type larger than") {
			return // rare: nested choices repeated past the size bound
		}
		if err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
		runSession(t, f, ps[0])
	})
}

// Arbitrary choices: many protocols are not realizable, and projection must
// say so with ErrNotRealizable; those it accepts must run safely.
func TestPropertyAcceptedProjectionsAreSafe(t *testing.T) {
	accepted, rejected := 0, 0
	rapid.Check(t, func(t *rapid.T) {
		g := &gen{t: t, free: true}
		src := Format(g.protocol())
		f, ps, err := Load([]byte(src))
		if err != nil {
			if !errors.Is(err, ErrNotRealizable) {
				t.Fatalf("%v\n%s", err, src)
			}
			rejected++
			return
		}
		accepted++
		runSession(t, f, ps[0])
	})
	t.Logf("accepted %d, rejected %d", accepted, rejected)
	if accepted == 0 {
		t.Error("the generator produced no realizable protocol")
	}
}

// The monitor itself: it must reject a trace that breaks the protocol, or
// the property above proves nothing.
func TestMonitorRejects(t *testing.T) {
	f, err := Parse([]byte(`protocol P { roles: A, B, C;
		A -> B: X; B -> C: Y;
		choice at A { A -> C: L; } or { A -> C: R; }
	}`))
	if err != nil {
		t.Fatal(err)
	}
	g := buildGlobal(f, f.Protocols[0])
	steps := func(evs ...event) bool {
		cur := g
		for _, e := range evs {
			n, ok := gStep(cur, e)
			if !ok {
				return false
			}
			cur = n
		}
		return true
	}
	send := func(from, to, l string) event { return event{send: true, from: from, to: to, label: l} }
	recv := func(from, to, l string) event { return event{from: from, to: to, label: l} }
	if !steps(send("A", "B", "X"), send("A", "C", "R"), recv("A", "B", "X"), send("B", "C", "Y"), recv("B", "C", "Y"), recv("A", "C", "R")) {
		t.Error("a valid asynchronous trace was rejected")
	}
	if steps(send("B", "C", "Y")) {
		t.Error("B sent before receiving")
	}
	if steps(send("A", "B", "X"), send("A", "C", "R"), recv("A", "C", "R")) {
		t.Error("C received from A before receiving from B")
	}
	if steps(send("A", "B", "Z")) {
		t.Error("wrong label accepted")
	}
}
