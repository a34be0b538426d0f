package choreo

import (
	"fmt"
	"strings"
)

// Limits that keep projection linear-ish on hostile input. Choices put their
// continuation in every branch, so a role's local type is a tree that can be
// exponentially larger than the protocol (twenty choices in a row give 2^20
// paths); such a protocol is refused rather than printed forever.
const (
	maxLocalSize = 1 << 16 // steps in one role's local type, counted as a tree
	maxWork      = 1 << 24 // nodes visited by comparisons and merges
)

// Projection is a protocol together with the local type of each of its roles.
type Projection struct {
	Protocol *Protocol
	Roles    []RoleType // in declaration order
}

// RoleType is one role's local type.
type RoleType struct {
	Role string
	Type Local
}

// Local returns the local type of role.
func (p *Projection) Local(role string) (Local, error) {
	for _, r := range p.Roles {
		if r.Role == role {
			return r.Type, nil
		}
	}
	return nil, fmt.Errorf("protocol %s has no role %s: %w", p.Protocol.Name, role, ErrUnknown)
}

// Machine starts a session machine for role.
func (p *Projection) Machine(role string) (*Machine, error) {
	lt, err := p.Local(role)
	if err != nil {
		return nil, err
	}
	m := NewMachine(lt)
	m.role = role
	return m, nil
}

// Load parses and checks src and projects every protocol in it: the one call
// a caller with a .choreo file needs.
func Load(src []byte) (*File, []*Projection, error) {
	f, err := Parse(src)
	if err != nil {
		return nil, nil, err
	}
	ps, err := ProjectAll(f)
	if err != nil {
		return nil, nil, err
	}
	return f, ps, nil
}

// ProjectAll checks f and projects each of its protocols, in file order.
func ProjectAll(f *File) ([]*Projection, error) {
	if err := Check(f); err != nil {
		return nil, err
	}
	out := make([]*Projection, 0, len(f.Protocols))
	for _, p := range f.Protocols {
		pr, err := project(f, p)
		if err != nil {
			return nil, err
		}
		out = append(out, pr)
	}
	return out, nil
}

// Project checks f and projects its protocol called name.
func Project(f *File, name string) (*Projection, error) {
	if err := Check(f); err != nil {
		return nil, err
	}
	p := f.Protocol(name)
	if p == nil {
		return nil, fmt.Errorf("no protocol %s: %w", name, ErrUnknown)
	}
	return project(f, p)
}

func project(f *File, p *Protocol) (*Projection, error) {
	protos := make(map[string]*Protocol, len(f.Protocols))
	for _, q := range f.Protocols {
		protos[q.Name] = q
	}
	pr := &Projection{Protocol: p}
	for _, r := range p.Roles {
		j := &projector{protos: protos, role: r.Name, size: map[Local]int{}, uses: map[*Protocol]bool{}}
		lt, err := j.block(p.Body, "", j.end())
		if err != nil {
			return nil, err
		}
		pr.Roles = append(pr.Roles, RoleType{Role: r.Name, Type: lt})
	}
	return pr, nil
}

// projector projects one protocol onto one role.
//
// Statements are projected right to left, each onto the already projected
// rest of its block (k): a message becomes Send or Recv before k, or is
// skipped; a choice projects each branch onto k and merges; a loop's body is
// projected onto k, so falling off its end continues with whatever follows
// it. Loops of a protocol included with do are renamed "Proto.Loop", so they
// cannot capture a continue of the includer.
type projector struct {
	protos map[string]*Protocol
	role   string
	size   map[Local]int      // tree size of every node built
	uses   map[*Protocol]bool // memo: does role act in this protocol
	work   int
}

func (j *projector) end() Local {
	e := &End{}
	j.size[e] = 1
	return e
}

// built records the tree size of a new node and enforces maxLocalSize.
func (j *projector) built(l Local, pos Pos) (Local, error) {
	n := 1
	switch t := l.(type) {
	case *Send:
		n += j.size[t.Cont]
	case *Recv:
		n += j.size[t.Cont]
	case *Select:
		for _, a := range t.Arms {
			n += j.size[a.Send]
		}
	case *Branch:
		for _, a := range t.Arms {
			n += j.size[a]
		}
	case *Rec:
		n += j.size[t.Body]
	}
	if n > maxLocalSize {
		return nil, errorf(ErrNotRealizable, pos, "role %s: local type larger than %d steps (choices repeat what follows them); split the protocol", j.role, maxLocalSize)
	}
	j.size[l] = n
	return l, nil
}

func (j *projector) block(stmts []Stmt, prefix string, k Local) (Local, error) {
	cur := k
	for i := len(stmts) - 1; i >= 0; i-- {
		var err error
		if cur, err = j.stmt(stmts[i], prefix, cur); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

func (j *projector) stmt(s Stmt, prefix string, k Local) (Local, error) {
	switch s := s.(type) {
	case *MessageStmt:
		switch j.role {
		case s.From:
			return j.built(&Send{To: s.To, Label: s.Label, Type: s.Type, Ann: s.Ann, Pos: s.Pos, Cont: k}, s.Pos)
		case s.To:
			return j.built(&Recv{From: s.From, Label: s.Label, Type: s.Type, Ann: s.Ann, Pos: s.Pos, Cont: k}, s.Pos)
		}
		return k, nil

	case *ContinueStmt:
		return j.built(&Var{Name: prefix + s.Name}, s.Pos)

	case *RecStmt:
		name := prefix + s.Name
		// A role with nothing to do in a loop that can only end by falling
		// through waits for what follows it, however often the loop runs.
		if !j.blockUses(s.Body) && !continuesOut(s.Body, map[string]bool{s.Name: true}) {
			return k, nil
		}
		body, err := j.block(s.Body, prefix, k)
		if err != nil {
			return nil, err
		}
		if v, ok := body.(*Var); ok && v.Name == name {
			return j.end(), nil // idle forever in the loop
		}
		if !freeIn(name, body) {
			return body, nil
		}
		return j.built(&Rec{Name: name, Body: body}, s.Pos)

	case *DoStmt:
		callee := j.protos[s.Name]
		if !j.protocolUses(callee) {
			return k, nil
		}
		return j.block(callee.Body, prefix+callee.Name+".", k)

	case *ChoiceStmt:
		branches := make([]Local, len(s.Branches))
		for i, b := range s.Branches {
			t, err := j.block(b.Body, prefix, k)
			if err != nil {
				return nil, err
			}
			branches[i] = t
		}
		if j.role == s.At {
			sel := &Select{Pos: s.Pos}
			for i, b := range s.Branches {
				sel.Arms = append(sel.Arms, SelectArm{Label: b.Label, Send: branches[i].(*Send)})
			}
			return j.built(sel, s.Pos)
		}
		return j.mergeBranches(s, branches)
	}
	return nil, fmt.Errorf("choreo: unknown statement %T", s)
}

// mergeBranches folds the projections of a choice's branches for a role that
// does not decide it. On failure it names the first pair of branches that
// cannot be reconciled.
func (j *projector) mergeBranches(s *ChoiceStmt, branches []Local) (Local, error) {
	acc := branches[0]
	for i := 1; i < len(branches); i++ {
		m, fail, err := j.merge(acc, branches[i])
		if err != nil {
			return nil, err
		}
		if fail == nil {
			acc = m
			continue
		}
		// Find the earliest branch that disagrees with branch i on its own,
		// for a message about two concrete branches.
		first := 0
		for h := 0; h < i; h++ {
			if _, f, _ := j.merge(branches[h], branches[i]); f != nil {
				first, fail = h, f
				break
			}
		}
		return nil, errorf(ErrNotRealizable, s.Pos,
			"role %s cannot tell which branch of the choice at %s was taken: in branch %s it %s, in branch %s it %s",
			j.role, s.At, s.Branches[first].Label, describe(fail.a), s.Branches[i].Label, describe(fail.b))
	}
	return acc, nil
}

// mergeFailure is the pair of sub-terms where two branches first disagree.
type mergeFailure struct{ a, b Local }

// merge is the standard full merge of local types: identical types merge to
// themselves, and two receptions from the same sender merge into one
// external choice offering the labels of both (a label in both must carry
// the same payload and annotations and have mergeable continuations).
// Everything else is a role doing different things in different branches
// with nobody telling it which one: not realizable.
func (j *projector) merge(a, b Local) (Local, *mergeFailure, error) {
	eq, err := j.equal(a, b)
	if err != nil || eq {
		return a, nil, err
	}
	fromA, armsA, okA := recvArms(a)
	fromB, armsB, okB := recvArms(b)
	if okA && okB && fromA == fromB {
		arms := append([]*Recv(nil), armsA...)
		for _, y := range armsB {
			idx := -1
			for i, x := range arms {
				if x.Label == y.Label {
					idx = i
				}
			}
			if idx < 0 {
				arms = append(arms, y)
				continue
			}
			x := arms[idx]
			if x.Type != y.Type || !x.Ann.Equal(y.Ann) {
				return nil, &mergeFailure{x, y}, nil
			}
			c, fail, err := j.merge(x.Cont, y.Cont)
			if err != nil || fail != nil {
				return nil, fail, err
			}
			r := *x
			r.Cont = c
			nr, err := j.built(&r, r.Pos)
			if err != nil {
				return nil, nil, err
			}
			arms[idx] = nr.(*Recv)
		}
		if len(arms) == 1 {
			return arms[0], nil, nil
		}
		m, err := j.built(&Branch{From: fromA, Pos: arms[0].Pos, Arms: arms}, arms[0].Pos)
		return m, nil, err
	}
	if ra, ok := a.(*Rec); ok {
		if rb, ok := b.(*Rec); ok && ra.Name == rb.Name {
			body, fail, err := j.merge(ra.Body, rb.Body)
			if err != nil || fail != nil {
				return nil, fail, err
			}
			m, err := j.built(&Rec{Name: ra.Name, Body: body}, Pos{})
			return m, nil, err
		}
	}
	return nil, &mergeFailure{a, b}, nil
}

func recvArms(l Local) (string, []*Recv, bool) {
	switch t := l.(type) {
	case *Recv:
		return t.From, []*Recv{t}, true
	case *Branch:
		return t.From, t.Arms, true
	}
	return "", nil, false
}

// equal compares local types structurally. Shared continuations make the
// pointer test hit often; work bounds the rest.
func (j *projector) equal(a, b Local) (bool, error) {
	if a == b {
		return true, nil
	}
	j.work++
	if j.work > maxWork {
		return false, errorf(ErrNotRealizable, Pos{}, "role %s: protocol too complex to project", j.role)
	}
	switch x := a.(type) {
	case *Send:
		y, ok := b.(*Send)
		if !ok || x.To != y.To || x.Label != y.Label || x.Type != y.Type || !x.Ann.Equal(y.Ann) {
			return false, nil
		}
		return j.equal(x.Cont, y.Cont)
	case *Recv:
		y, ok := b.(*Recv)
		if !ok || x.From != y.From || x.Label != y.Label || x.Type != y.Type || !x.Ann.Equal(y.Ann) {
			return false, nil
		}
		return j.equal(x.Cont, y.Cont)
	case *Select:
		y, ok := b.(*Select)
		if !ok || len(x.Arms) != len(y.Arms) {
			return false, nil
		}
		for i := range x.Arms {
			if x.Arms[i].Label != y.Arms[i].Label {
				return false, nil
			}
			if eq, err := j.equal(x.Arms[i].Send, y.Arms[i].Send); err != nil || !eq {
				return false, err
			}
		}
		return true, nil
	case *Branch:
		y, ok := b.(*Branch)
		if !ok || x.From != y.From || len(x.Arms) != len(y.Arms) {
			return false, nil
		}
		for i := range x.Arms {
			if eq, err := j.equal(x.Arms[i], y.Arms[i]); err != nil || !eq {
				return false, err
			}
		}
		return true, nil
	case *Rec:
		y, ok := b.(*Rec)
		if !ok || x.Name != y.Name {
			return false, nil
		}
		return j.equal(x.Body, y.Body)
	case *Var:
		y, ok := b.(*Var)
		return ok && x.Name == y.Name, nil
	case *End:
		_, ok := b.(*End)
		return ok, nil
	}
	return false, nil
}

// freeIn reports whether a continue of loop name occurs in l outside any
// inner loop of the same name.
func freeIn(name string, l Local) bool {
	switch t := l.(type) {
	case *Send:
		return freeIn(name, t.Cont)
	case *Recv:
		return freeIn(name, t.Cont)
	case *Select:
		for _, a := range t.Arms {
			if freeIn(name, a.Send) {
				return true
			}
		}
	case *Branch:
		for _, a := range t.Arms {
			if freeIn(name, a) {
				return true
			}
		}
	case *Rec:
		return t.Name != name && freeIn(name, t.Body)
	case *Var:
		return t.Name == name
	}
	return false
}

// blockUses reports whether the role sends or receives anything in stmts,
// including protocols they include.
func (j *projector) blockUses(stmts []Stmt) bool {
	for _, s := range stmts {
		switch s := s.(type) {
		case *MessageStmt:
			if s.From == j.role || s.To == j.role {
				return true
			}
		case *ChoiceStmt:
			if s.At == j.role {
				return true
			}
			for _, b := range s.Branches {
				if j.blockUses(b.Body) {
					return true
				}
			}
		case *RecStmt:
			if j.blockUses(s.Body) {
				return true
			}
		case *DoStmt:
			if j.protocolUses(j.protos[s.Name]) {
				return true
			}
		}
	}
	return false
}

func (j *projector) protocolUses(p *Protocol) bool {
	if u, ok := j.uses[p]; ok {
		return u
	}
	u := j.blockUses(p.Body)
	j.uses[p] = u
	return u
}

// continuesOut reports whether stmts contain a continue of a loop that is
// not defined inside them (bound lists the ones that are).
func continuesOut(stmts []Stmt, bound map[string]bool) bool {
	for _, s := range stmts {
		switch s := s.(type) {
		case *ContinueStmt:
			if !bound[s.Name] {
				return true
			}
		case *ChoiceStmt:
			for _, b := range s.Branches {
				if continuesOut(b.Body, bound) {
					return true
				}
			}
		case *RecStmt:
			inner := map[string]bool{s.Name: true}
			for n := range bound {
				inner[n] = true
			}
			if continuesOut(s.Body, inner) {
				return true
			}
		}
	}
	return false
}

// describe says in words what a local type does first, for errors.
func describe(l Local) string {
	switch t := l.(type) {
	case *Send:
		return fmt.Sprintf("sends %s to %s (%s)", t.Label, t.To, t.Pos)
	case *Recv:
		return fmt.Sprintf("receives %s from %s (%s)", t.Label, t.From, t.Pos)
	case *Branch:
		labels := make([]string, len(t.Arms))
		for i, a := range t.Arms {
			labels[i] = a.Label
		}
		return fmt.Sprintf("receives one of %s from %s", strings.Join(labels, ", "), t.From)
	case *Select:
		labels := make([]string, len(t.Arms))
		for i, a := range t.Arms {
			labels[i] = a.Label
		}
		return fmt.Sprintf("chooses between %s (%s)", strings.Join(labels, ", "), t.Pos)
	case *Rec:
		return describe(t.Body)
	case *Var:
		return "goes back to loop " + t.Name
	}
	return "does nothing more"
}
