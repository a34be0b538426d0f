package choreo

// The global (choreographic) view: what the parser produces and the checker
// and projection read. Nodes keep the position of the token that starts them
// so every later error can point at the source.

// File is one parsed source text: its protocols in source order.
type File struct {
	Protocols []*Protocol
}

// Protocol returns the protocol called name, or nil.
func (f *File) Protocol(name string) *Protocol {
	for _, p := range f.Protocols {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Protocol is `protocol Name { roles: ...; body }` with its attributes.
type Protocol struct {
	Pos   Pos
	Name  string
	Attrs []Attr // #[key = value] lines before the protocol, kept verbatim
	Roles []Role
	Body  []Stmt
}

// RoleNames lists the declared roles in declaration order.
func (p *Protocol) RoleNames() []string {
	names := make([]string, len(p.Roles))
	for i, r := range p.Roles {
		names[i] = r.Name
	}
	return names
}

// Attr returns the value of attribute key and whether it is present.
func (p *Protocol) Attr(key string) (Value, bool) {
	for _, a := range p.Attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return Value{}, false
}

// Role is one declared role.
type Role struct {
	Pos  Pos
	Name string
}

// Attr is one `key = value` item, in a #[...] attribute or an annotation list.
type Attr struct {
	Pos   Pos
	Key   string
	Value Value
}

// ValueKind says how a value was written.
type ValueKind int

const (
	ValueNone   ValueKind = iota // a bare key: #[flag]
	ValueString                  // "text"
	ValueInt                     // 42, -1
	ValueIdent                   // true, some_name
)

// Value is an attribute or annotation value as written.
type Value struct {
	Kind ValueKind
	Text string // unquoted string, digits or identifier
}

// Annotations are the per-message effects the runtime applies when sending:
// the capability the guard chain checks, the flow cost charged before the
// send, and the journal facts the message commits.
type Annotations struct {
	GuardCapability string // "" when absent
	FlowCost        uint32 // 0 when absent
	JournalFacts    string // "" when absent
	// Order lists the keys in the order written, for printing back.
	Order []string
}

// IsZero reports whether no annotation was given.
func (a Annotations) IsZero() bool { return len(a.Order) == 0 }

// Equal compares the values, not the order in which they were written; an
// absent flow_cost and flow_cost = 0 charge the same.
func (a Annotations) Equal(b Annotations) bool {
	return a.GuardCapability == b.GuardCapability && a.FlowCost == b.FlowCost &&
		a.JournalFacts == b.JournalFacts
}

func (a Annotations) has(key string) bool {
	for _, k := range a.Order {
		if k == key {
			return true
		}
	}
	return false
}

// The annotation keys the language knows. Unknown keys are rejected: a
// misspelt flow_cost silently charging nothing would be worse than an error.
const (
	annotGuard    = "guard_capability"
	annotFlowCost = "flow_cost"
	annotFacts    = "journal_facts"
)

// Stmt is one statement of a protocol body.
type Stmt interface {
	StmtPos() Pos
	isStmt()
}

// MessageStmt is `From[annotations] -> To: Label(Type);`.
type MessageStmt struct {
	Pos    Pos // of the sender
	From   string
	To     string
	ToPos  Pos
	Label  string
	Type   string // "" when the message carries no payload
	Ann    Annotations
	AnnPos Pos // of '[', zero without annotations
}

// ChoiceStmt is `choice at At { ... }`: At decides, and each branch starts
// with a message from At whose label tells its receiver which branch it is.
type ChoiceStmt struct {
	Pos      Pos
	At       string
	AtPos    Pos
	Branches []*ChoiceBranch
}

// ChoiceBranch is one alternative of a choice.
type ChoiceBranch struct {
	Pos   Pos
	Label string // explicit label, or the first message's label
	// Explicit is false for the `{ ... } or { ... }` form.
	Explicit bool
	Body     []Stmt
}

// RecStmt is `rec Name { ... }`: a loop that `continue Name;` restarts and
// that ends by falling off its end.
type RecStmt struct {
	Pos  Pos
	Name string
	Body []Stmt
}

// ContinueStmt is `continue Name;`.
type ContinueStmt struct {
	Pos  Pos
	Name string
}

// DoStmt is `do Name;`: the body of protocol Name runs here, its roles
// standing for the roles of the same name in the enclosing protocol.
type DoStmt struct {
	Pos  Pos
	Name string
}

func (s *MessageStmt) StmtPos() Pos  { return s.Pos }
func (s *ChoiceStmt) StmtPos() Pos   { return s.Pos }
func (s *RecStmt) StmtPos() Pos      { return s.Pos }
func (s *ContinueStmt) StmtPos() Pos { return s.Pos }
func (s *DoStmt) StmtPos() Pos       { return s.Pos }

func (*MessageStmt) isStmt()  {}
func (*ChoiceStmt) isStmt()   {}
func (*RecStmt) isStmt()      {}
func (*ContinueStmt) isStmt() {}
func (*DoStmt) isStmt()       {}
