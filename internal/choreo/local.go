package choreo

import (
	"strconv"
	"strings"
)

// Local is one role's view of a protocol, a session type: what it sends to
// whom, what it receives from whom, where it decides and where it is told,
// and where it loops. Values are immutable once built; continuations may be
// shared between branches, so treat a Local as a value, never modify one.
//
// The concrete types are *Send, *Recv, *Select, *Branch, *Rec, *Var and *End.
type Local interface {
	isLocal()
}

// Send is "send Label(Type) to To, then Cont".
type Send struct {
	To    string
	Label string
	Type  string // "" for a message without payload
	Ann   Annotations
	Pos   Pos // of the message in the global protocol
	Cont  Local
}

// Recv is "receive Label(Type) from From, then Cont". Ann is the sender's
// annotation, so a receiver knows which facts the message accompanies.
type Recv struct {
	From  string
	Label string
	Type  string
	Ann   Annotations
	Pos   Pos
	Cont  Local
}

// Select is an internal choice: this role decides, by sending the first
// message of one arm. Arms start with different (receiver, label) pairs.
type Select struct {
	Pos  Pos // of the choice
	Arms []SelectArm
}

// SelectArm is one branch the deciding role may take: Label names the branch
// (as written, or its first message's label) and Send is its first message.
type SelectArm struct {
	Label string
	Send  *Send
}

// Branch is an external choice: the role waits for one of several messages
// from From, each with its own label, and the label says which way to go.
type Branch struct {
	From string
	Pos  Pos
	Arms []*Recv // distinct labels, all from From
}

// Rec binds Name to Body: reaching Var{Name} inside Body starts Body again.
type Rec struct {
	Name string
	Body Local
}

// Var jumps back to the enclosing Rec of the same name.
type Var struct {
	Name string
}

// End is the end of the role's part in the session.
type End struct{}

func (*Send) isLocal()   {}
func (*Recv) isLocal()   {}
func (*Select) isLocal() {}
func (*Branch) isLocal() {}
func (*Rec) isLocal()    {}
func (*Var) isLocal()    {}
func (*End) isLocal()    {}

// LocalString renders a local type on one line, e.g.
//
//	Send(Bob, Ping); Recv(Bob, Pong); end
//
// Choices print as `select { L1: ... | L2: ... }` and `branch A { ... | ... }`,
// loops as `rec L { ...; continue L }`. The text is stable: tests compare it.
func LocalString(l Local) string {
	var b strings.Builder
	writeLocal(&b, l, -1)
	return b.String()
}

// FormatLocal renders a local type over several lines, indented by two
// spaces a level, starting at indent levels; the form auractl prints.
func FormatLocal(l Local, indent int) string {
	var b strings.Builder
	writeLocal(&b, l, indent)
	return b.String()
}

// writeLocal writes l. ml < 0 selects the one-line form; otherwise ml is the
// current indentation level and each step gets its own line.
func writeLocal(b *strings.Builder, l Local, ml int) {
	sep := func() {
		if ml < 0 {
			b.WriteString("; ")
		} else {
			b.WriteString(";\n")
			pad(b, ml)
		}
	}
	if ml >= 0 {
		pad(b, ml)
	}
	for {
		switch t := l.(type) {
		case *Send:
			b.WriteString("Send(")
			b.WriteString(t.To)
			b.WriteString(", ")
			writeMsg(b, t.Label, t.Type)
			b.WriteByte(')')
			writeAnn(b, t.Ann)
			sep()
			l = t.Cont
			continue
		case *Recv:
			b.WriteString("Recv(")
			b.WriteString(t.From)
			b.WriteString(", ")
			writeMsg(b, t.Label, t.Type)
			b.WriteByte(')')
			writeAnn(b, t.Ann)
			sep()
			l = t.Cont
			continue
		case *Select:
			b.WriteString("select {")
			for i, a := range t.Arms {
				writeArm(b, a.Label, a.Send, i, ml)
			}
			closeBrace(b, ml)
		case *Branch:
			b.WriteString("branch ")
			b.WriteString(t.From)
			b.WriteString(" {")
			for i, a := range t.Arms {
				writeArm(b, a.Label, a, i, ml)
			}
			closeBrace(b, ml)
		case *Rec:
			b.WriteString("rec ")
			b.WriteString(t.Name)
			b.WriteString(" {")
			if ml < 0 {
				b.WriteByte(' ')
				writeLocal(b, t.Body, -1)
			} else {
				b.WriteByte('\n')
				writeLocal(b, t.Body, ml+1)
			}
			closeBrace(b, ml)
		case *Var:
			b.WriteString("continue ")
			b.WriteString(t.Name)
		case *End, nil:
			b.WriteString("end")
		}
		return
	}
}

func writeArm(b *strings.Builder, label string, l Local, i, ml int) {
	if ml < 0 {
		if i > 0 {
			b.WriteString(" |")
		}
		b.WriteByte(' ')
		b.WriteString(label)
		b.WriteString(": ")
		writeLocal(b, l, -1)
		return
	}
	b.WriteByte('\n')
	pad(b, ml+1)
	b.WriteString(label)
	b.WriteString(":\n")
	writeLocal(b, l, ml+2)
}

func closeBrace(b *strings.Builder, ml int) {
	if ml < 0 {
		b.WriteString(" }")
		return
	}
	b.WriteByte('\n')
	pad(b, ml)
	b.WriteByte('}')
}

func pad(b *strings.Builder, n int) {
	for range n {
		b.WriteString("  ")
	}
}

func writeMsg(b *strings.Builder, label, typ string) {
	b.WriteString(label)
	if typ != "" {
		b.WriteByte('(')
		b.WriteString(typ)
		b.WriteByte(')')
	}
}

// writeAnn writes annotations as in the source, in the order written.
func writeAnn(b *strings.Builder, a Annotations) {
	if a.IsZero() {
		return
	}
	b.WriteString(" [")
	writeAnnItems(b, a)
	b.WriteByte(']')
}

func writeAnnItems(b *strings.Builder, a Annotations) {
	for i, k := range a.Order {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteString(" = ")
		switch k {
		case annotGuard:
			b.WriteString(quoteString(a.GuardCapability))
		case annotFlowCost:
			b.WriteString(strconv.FormatUint(uint64(a.FlowCost), 10))
		case annotFacts:
			b.WriteString(quoteString(a.JournalFacts))
		}
	}
}

// LocalNode is the JSON form of a local type (`auractl choreo project -o
// json`). Kind is one of send, recv, select, branch, rec, continue, end; the
// other fields are present as the kind needs them:
//
//	send:     peer, label, type, annotations, next
//	recv:     peer, label, type, annotations, next
//	select:   arms [{label, next: <send>}]
//	branch:   peer, arms [{label, next: <recv>}]
//	rec:      name, next (the body)
//	continue: name
type LocalNode struct {
	Kind        string           `json:"kind"`
	Peer        string           `json:"peer,omitempty"`
	Label       string           `json:"label,omitempty"`
	Type        string           `json:"type,omitempty"`
	Annotations *AnnotationsNode `json:"annotations,omitempty"`
	Name        string           `json:"name,omitempty"`
	Arms        []ArmNode        `json:"arms,omitempty"`
	Next        *LocalNode       `json:"next,omitempty"`
}

// ArmNode is one arm of a select or branch.
type ArmNode struct {
	Label string     `json:"label"`
	Next  *LocalNode `json:"next"`
}

// AnnotationsNode is the JSON form of Annotations; absent ones are omitted.
type AnnotationsNode struct {
	GuardCapability string  `json:"guard_capability,omitempty"`
	FlowCost        *uint32 `json:"flow_cost,omitempty"`
	JournalFacts    string  `json:"journal_facts,omitempty"`
}

// Node converts a local type to its JSON form.
func Node(l Local) *LocalNode {
	switch t := l.(type) {
	case *Send:
		return &LocalNode{Kind: "send", Peer: t.To, Label: t.Label, Type: t.Type, Annotations: annNode(t.Ann), Next: Node(t.Cont)}
	case *Recv:
		return &LocalNode{Kind: "recv", Peer: t.From, Label: t.Label, Type: t.Type, Annotations: annNode(t.Ann), Next: Node(t.Cont)}
	case *Select:
		n := &LocalNode{Kind: "select"}
		for _, a := range t.Arms {
			n.Arms = append(n.Arms, ArmNode{Label: a.Label, Next: Node(a.Send)})
		}
		return n
	case *Branch:
		n := &LocalNode{Kind: "branch", Peer: t.From}
		for _, a := range t.Arms {
			n.Arms = append(n.Arms, ArmNode{Label: a.Label, Next: Node(a)})
		}
		return n
	case *Rec:
		return &LocalNode{Kind: "rec", Name: t.Name, Next: Node(t.Body)}
	case *Var:
		return &LocalNode{Kind: "continue", Name: t.Name}
	}
	return &LocalNode{Kind: "end"}
}

func annNode(a Annotations) *AnnotationsNode {
	if a.IsZero() {
		return nil
	}
	n := &AnnotationsNode{GuardCapability: a.GuardCapability, JournalFacts: a.JournalFacts}
	if a.has(annotFlowCost) {
		c := a.FlowCost
		n.FlowCost = &c
	}
	return n
}
