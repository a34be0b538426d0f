package choreo

import "strings"

// ActionKind says whether an action sends or receives.
type ActionKind uint8

const (
	ActSend ActionKind = iota + 1
	ActRecv
)

func (k ActionKind) String() string {
	switch k {
	case ActSend:
		return "Send"
	case ActRecv:
		return "Recv"
	}
	return "Action"
}

// Action is one step a role may take: send a message to Peer, or receive one
// from Peer. A machine's Next fills in everything; Step matches on Kind, Peer
// and Label only, which is what travels on the wire.
type Action struct {
	Kind  ActionKind
	Peer  string
	Label string
	Type  string      // payload type, "" for none
	Ann   Annotations // the message's annotations, for the guard chain
	// Branch is set on a send that decides a choice: the label of the
	// branch it selects.
	Branch string
}

// String renders the action as in local types: "Send(Bob, Ping)".
func (a Action) String() string {
	var b strings.Builder
	b.WriteString(a.Kind.String())
	b.WriteByte('(')
	b.WriteString(a.Peer)
	b.WriteString(", ")
	writeMsg(&b, a.Label, a.Type)
	b.WriteByte(')')
	return b.String()
}

func (a Action) matches(b Action) bool {
	return a.Kind == b.Kind && a.Peer == b.Peer && a.Label == b.Label
}

// Machine steps through one role's local type: at every point it says which
// messages the role may send and which it may receive, and it refuses
// anything else. It is what a session runtime consults before each send and
// after each receive; it does no I/O and keeps no clock.
//
// A Machine is not safe for concurrent use; a session owns one.
type Machine struct {
	role string
	cur  Local
	// loops maps each loop name to its most recently entered Rec. Loop
	// names never shadow one another (Check forbids it within a protocol,
	// and included protocols' loops are renamed), so the latest binding of
	// a name is the one a continue refers to.
	loops map[string]*Rec
	steps int
}

// NewMachine starts a machine at the beginning of lt.
func NewMachine(lt Local) *Machine {
	m := &Machine{cur: lt, loops: map[string]*Rec{}}
	m.settle()
	return m
}

// settle unfolds loops until the current type is an action or the end. A
// continue of an unknown loop, or a loop that restarts without acting, leaves
// the machine stuck: no actions and not done. Projection never builds either.
func (m *Machine) settle() {
	seen := map[*Rec]bool{}
	for {
		switch t := m.cur.(type) {
		case *Rec:
			if seen[t] {
				m.cur = stuck{}
				return
			}
			seen[t] = true
			m.loops[t.Name] = t
			m.cur = t.Body
		case *Var:
			r, ok := m.loops[t.Name]
			if !ok || seen[r] {
				m.cur = stuck{}
				return
			}
			seen[r] = true
			m.cur = r.Body
		case nil:
			m.cur = &End{}
			return
		default:
			return
		}
	}
}

// stuck is where a malformed local type leaves a machine.
type stuck struct{}

func (stuck) isLocal() {}

// Role is the role the machine plays, when it was made by Projection.Machine.
func (m *Machine) Role() string { return m.role }

// Steps counts the actions taken so far.
func (m *Machine) Steps() int { return m.steps }

// Done reports whether the role has finished its part of the session.
func (m *Machine) Done() bool {
	_, ok := m.cur.(*End)
	return ok
}

// Current is the rest of the local type, from the current state on.
func (m *Machine) Current() Local { return m.cur }

// Next lists the actions allowed now, in the order of the local type: the
// sends of a select (one per branch), the receives of a branch, or a single
// send or receive. It is empty once Done.
func (m *Machine) Next() []Action {
	switch t := m.cur.(type) {
	case *Send:
		return []Action{sendAction(t, "")}
	case *Recv:
		return []Action{recvAction(t)}
	case *Select:
		out := make([]Action, len(t.Arms))
		for i, a := range t.Arms {
			out[i] = sendAction(a.Send, a.Label)
		}
		return out
	case *Branch:
		out := make([]Action, len(t.Arms))
		for i, a := range t.Arms {
			out[i] = recvAction(a)
		}
		return out
	}
	return nil
}

// Receiving reports whether the role is waiting for a message, and from whom.
// A role waits on one peer at a time: an external choice is always offered
// by a single sender.
func (m *Machine) Receiving() (from string, ok bool) {
	switch t := m.cur.(type) {
	case *Recv:
		return t.From, true
	case *Branch:
		return t.From, true
	}
	return "", false
}

// Lookup finds the allowed action with a's kind, peer and label, with its
// payload type and annotations filled in, without taking it.
func (m *Machine) Lookup(a Action) (Action, bool) {
	for _, n := range m.Next() {
		if n.matches(a) {
			return n, true
		}
	}
	return Action{}, false
}

// Step takes action a. An action the local type does not allow now is a
// *ViolationError (wrapping ErrViolation) and leaves the machine unchanged:
// for a receive, the peer broke the protocol; for a send, the caller did.
func (m *Machine) Step(a Action) error {
	next, ok := m.advance(a)
	if !ok {
		return &ViolationError{Role: m.role, Got: a, Expected: m.Next()}
	}
	m.cur = next
	m.steps++
	m.settle()
	return nil
}

func (m *Machine) advance(a Action) (Local, bool) {
	switch t := m.cur.(type) {
	case *Send:
		if sendAction(t, "").matches(a) {
			return t.Cont, true
		}
	case *Recv:
		if recvAction(t).matches(a) {
			return t.Cont, true
		}
	case *Select:
		for _, arm := range t.Arms {
			if sendAction(arm.Send, arm.Label).matches(a) {
				return arm.Send.Cont, true
			}
		}
	case *Branch:
		for _, arm := range t.Arms {
			if recvAction(arm).matches(a) {
				return arm.Cont, true
			}
		}
	}
	return nil, false
}

func sendAction(s *Send, branch string) Action {
	return Action{Kind: ActSend, Peer: s.To, Label: s.Label, Type: s.Type, Ann: s.Ann, Branch: branch}
}

func recvAction(r *Recv) Action {
	return Action{Kind: ActRecv, Peer: r.From, Label: r.Label, Type: r.Type, Ann: r.Ann}
}
