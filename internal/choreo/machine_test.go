package choreo

import (
	"errors"
	"reflect"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

func loadOne(t *testing.T, src string) *Projection {
	t.Helper()
	_, ps, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

func TestMachineWalksPingPong(t *testing.T) {
	p := loadOne(t, `protocol PingPong { roles: Alice, Bob; Alice -> Bob: Ping; Bob -> Alice: Pong; }`)
	alice, err := p.Machine("Alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := alice.Next(); !reflect.DeepEqual(got, []Action{{Kind: ActSend, Peer: "Bob", Label: "Ping"}}) {
		t.Fatalf("Next = %v", got)
	}
	if _, ok := alice.Receiving(); ok {
		t.Error("Alice receiving before she sent")
	}
	if err := alice.Step(Action{Kind: ActSend, Peer: "Bob", Label: "Ping"}); err != nil {
		t.Fatal(err)
	}
	if from, ok := alice.Receiving(); !ok || from != "Bob" {
		t.Errorf("Receiving = %q %v", from, ok)
	}
	if err := alice.Step(Action{Kind: ActRecv, Peer: "Bob", Label: "Pong"}); err != nil {
		t.Fatal(err)
	}
	if !alice.Done() || alice.Next() != nil || alice.Steps() != 2 {
		t.Errorf("done %v next %v steps %d", alice.Done(), alice.Next(), alice.Steps())
	}
}

func TestMachineViolation(t *testing.T) {
	p := loadOne(t, `protocol P { roles: A, B;
		choice at A { Yes: { A -> B: Yes; } or No: { A -> B: No(Reason); } }
	}`)
	b, _ := p.Machine("B")
	err := b.Step(Action{Kind: ActRecv, Peer: "A", Label: "Maybe"})
	var ve *ViolationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrViolation) || !errors.Is(err, core.ErrAborted) {
		t.Fatalf("error %v", err)
	}
	if want := "protocol violation: role B: Recv(A, Maybe) is not allowed, expected Recv(A, Yes) or Recv(A, No(Reason))"; err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
	// Refusal leaves the machine where it was.
	if b.Steps() != 0 || len(b.Next()) != 2 {
		t.Errorf("machine moved: steps %d next %v", b.Steps(), b.Next())
	}
	// A message from the wrong peer is refused too.
	if err := b.Step(Action{Kind: ActRecv, Peer: "C", Label: "Yes"}); !errors.Is(err, ErrViolation) {
		t.Errorf("wrong peer: %v", err)
	}
	if err := b.Step(Action{Kind: ActRecv, Peer: "A", Label: "No"}); err != nil {
		t.Fatal(err)
	}
	err = b.Step(Action{Kind: ActRecv, Peer: "A", Label: "Yes"})
	if want := "protocol violation: role B: Recv(A, Yes) is not allowed, the session has ended"; err == nil || err.Error() != want {
		t.Errorf("after end: %v", err)
	}
}

func TestMachineSelectAndLookup(t *testing.T) {
	p := loadOne(t, `protocol P { roles: A, B;
		choice at A {
			Commit: { A[guard_capability = "c", flow_cost = 3, journal_facts = "done"] -> B: CommitMsg(Cert); }
			or Abort: { A -> B: AbortMsg; }
		}
	}`)
	a, _ := p.Machine("A")
	next := a.Next()
	if len(next) != 2 || next[0].Branch != "Commit" || next[1].Branch != "Abort" {
		t.Fatalf("Next = %+v", next)
	}
	got, ok := a.Lookup(Action{Kind: ActSend, Peer: "B", Label: "CommitMsg"})
	if !ok || got.Type != "Cert" || got.Ann.GuardCapability != "c" || got.Ann.FlowCost != 3 || got.Ann.JournalFacts != "done" {
		t.Fatalf("Lookup = %+v %v", got, ok)
	}
	if _, ok := a.Lookup(Action{Kind: ActRecv, Peer: "B", Label: "CommitMsg"}); ok {
		t.Error("Lookup matched a receive against a send")
	}
	if err := a.Step(got); err != nil {
		t.Fatal(err)
	}
	if !a.Done() {
		t.Error("not done after the only message of the branch")
	}
}

// Loops unroll: the machine can go round as often as the protocol says.
func TestMachineUnrollsLoops(t *testing.T) {
	p := loadOne(t, `protocol P { roles: C, S;
		rec Loop {
			choice at C {
				More: { C -> S: Chunk; S -> C: Ack; continue Loop; }
				or Done: { C -> S: Done; }
			}
		}
	}`)
	c, _ := p.Machine("C")
	s, _ := p.Machine("S")
	for range 1000 {
		for _, step := range []struct {
			m *Machine
			a Action
		}{
			{c, Action{Kind: ActSend, Peer: "S", Label: "Chunk"}},
			{s, Action{Kind: ActRecv, Peer: "C", Label: "Chunk"}},
			{s, Action{Kind: ActSend, Peer: "C", Label: "Ack"}},
			{c, Action{Kind: ActRecv, Peer: "S", Label: "Ack"}},
		} {
			if err := step.m.Step(step.a); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Step(Action{Kind: ActSend, Peer: "S", Label: "Done"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Step(Action{Kind: ActRecv, Peer: "C", Label: "Done"}); err != nil {
		t.Fatal(err)
	}
	if !c.Done() || !s.Done() || c.Steps() != 2001 {
		t.Errorf("done %v %v, steps %d", c.Done(), s.Done(), c.Steps())
	}
}

// A hand-built local type that loops without acting leaves the machine stuck
// rather than spinning.
func TestMachineUnguardedLocalType(t *testing.T) {
	m := NewMachine(&Rec{Name: "X", Body: &Var{Name: "X"}})
	if m.Done() || len(m.Next()) != 0 {
		t.Errorf("done %v next %v", m.Done(), m.Next())
	}
	m = NewMachine(&Var{Name: "Nowhere"})
	if m.Done() || len(m.Next()) != 0 {
		t.Errorf("unbound: done %v next %v", m.Done(), m.Next())
	}
	if !NewMachine(nil).Done() {
		t.Error("nil local type is not the end")
	}
}
