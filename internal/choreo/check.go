package choreo

import "fmt"

// Check applies the rules of the language to every protocol of f. It reports
// the first problem in source order as an *Error wrapping ErrIllFormed:
//
//   - protocol names are unique; each protocol declares at least two roles,
//     none twice, and has at least one statement;
//   - every role a statement names is declared; nobody sends to itself;
//   - a choice has at least two branches, all labelled differently; each
//     branch starts with a message from the deciding role, and no two
//     branches start with the same message (its receiver could not tell them
//     apart);
//   - every continue names an enclosing rec of the same protocol, and is the
//     last statement of its block; a loop name does not shadow an enclosing
//     one; a loop may not restart before it sent anything (that would spin);
//   - nothing follows a statement that never finishes (a loop without an
//     exit, a choice whose every branch continues an outer loop);
//   - do names another protocol of the file, without cycles, whose roles are
//     all declared by the enclosing protocol (roles map by name).
//
// Realizability (can every role know what to do next) is checked by Project.
func Check(f *File) error {
	c := &checker{file: f, protos: map[string]*Protocol{}, finishes: map[*Protocol]bool{}}
	for _, p := range f.Protocols {
		if prev, ok := c.protos[p.Name]; ok {
			return errorf(ErrIllFormed, p.Pos, "protocol %s already declared at %s", p.Name, prev.Pos)
		}
		c.protos[p.Name] = p
	}
	if err := c.doCycles(); err != nil {
		return err
	}
	for _, p := range f.Protocols {
		if err := c.protocol(p); err != nil {
			return err
		}
	}
	return nil
}

type checker struct {
	file     *File
	protos   map[string]*Protocol
	finishes map[*Protocol]bool // memo of blockFinishes over protocol bodies

	// per protocol
	proto *Protocol
	roles map[string]bool
}

func (c *checker) protocol(p *Protocol) error {
	c.proto = p
	c.roles = map[string]bool{}
	for _, r := range p.Roles {
		if c.roles[r.Name] {
			return errorf(ErrIllFormed, r.Pos, "role %s declared twice", r.Name)
		}
		c.roles[r.Name] = true
	}
	if len(p.Roles) < 2 {
		return errorf(ErrIllFormed, p.Pos, "protocol %s needs at least two roles", p.Name)
	}
	if len(p.Body) == 0 {
		return errorf(ErrIllFormed, p.Pos, "protocol %s has no statements", p.Name)
	}
	_, err := c.block(p.Body, nil, nil)
	return err
}

// block checks stmts. loops are the enclosing rec names, innermost last;
// fresh are the loops entered with no message sent since, in which a
// continue would spin. It returns whether control can fall off the end.
func (c *checker) block(stmts []Stmt, loops []string, fresh map[string]bool) (bool, error) {
	for i, s := range stmts {
		finishes, err := c.stmt(s, loops, fresh)
		if err != nil {
			return false, err
		}
		// Every statement but continue sends something before it finishes
		// (branches start with messages, loops and protocols are not
		// empty), so loops entered before it are no longer fresh.
		fresh = nil
		if !finishes && i+1 < len(stmts) {
			what := "it never finishes"
			if _, ok := s.(*ContinueStmt); ok {
				what = "it follows continue"
			}
			return false, errorf(ErrIllFormed, stmts[i+1].StmtPos(), "statement is unreachable: %s", what)
		}
		if i+1 == len(stmts) {
			return finishes, nil
		}
	}
	return true, nil
}

func (c *checker) role(name string, pos Pos) error {
	if !c.roles[name] {
		return errorf(ErrIllFormed, pos, "role %s is not declared in protocol %s", name, c.proto.Name)
	}
	return nil
}

func (c *checker) stmt(s Stmt, loops []string, fresh map[string]bool) (bool, error) {
	switch s := s.(type) {
	case *MessageStmt:
		if err := c.role(s.From, s.Pos); err != nil {
			return false, err
		}
		if err := c.role(s.To, s.ToPos); err != nil {
			return false, err
		}
		if s.From == s.To {
			return false, errorf(ErrIllFormed, s.ToPos, "role %s sends %s to itself", s.From, s.Label)
		}
		return true, nil

	case *ChoiceStmt:
		if err := c.role(s.At, s.AtPos); err != nil {
			return false, err
		}
		if len(s.Branches) < 2 {
			return false, errorf(ErrIllFormed, s.Pos, "choice at %s needs at least two branches", s.At)
		}
		labels := map[string]*ChoiceBranch{}
		firsts := map[[2]string]*ChoiceBranch{}
		finishes := false
		for _, b := range s.Branches {
			if len(b.Body) == 0 {
				return false, errorf(ErrIllFormed, b.Pos, "empty branch in choice at %s", s.At)
			}
			m, ok := b.Body[0].(*MessageStmt)
			if !ok || m.From != s.At {
				return false, errorf(ErrIllFormed, b.Body[0].StmtPos(),
					"a branch of the choice at %s must start with a message from %s", s.At, s.At)
			}
			if prev, ok := labels[b.Label]; ok {
				return false, errorf(ErrIllFormed, b.Pos, "branch label %s already used at %s in this choice", b.Label, prev.Pos)
			}
			labels[b.Label] = b
			first := [2]string{m.To, m.Label}
			if prev, ok := firsts[first]; ok {
				return false, errorf(ErrIllFormed, m.Pos,
					"branches %s and %s both start with %s -> %s: %s; %s could not tell them apart",
					prev.Label, b.Label, m.From, m.To, m.Label, m.To)
			}
			firsts[first] = b
			f, err := c.block(b.Body, loops, nil)
			if err != nil {
				return false, err
			}
			finishes = finishes || f
		}
		return finishes, nil

	case *RecStmt:
		for _, l := range loops {
			if l == s.Name {
				return false, errorf(ErrIllFormed, s.Pos, "loop %s is already defined by an enclosing rec", s.Name)
			}
		}
		if len(s.Body) == 0 {
			return false, errorf(ErrIllFormed, s.Pos, "loop %s is empty", s.Name)
		}
		inner := map[string]bool{s.Name: true}
		for l := range fresh {
			inner[l] = true
		}
		return c.block(s.Body, append(loops[:len(loops):len(loops)], s.Name), inner)

	case *ContinueStmt:
		bound := false
		for _, l := range loops {
			bound = bound || l == s.Name
		}
		if !bound {
			return false, errorf(ErrIllFormed, s.Pos, "continue %s is not inside rec %s", s.Name, s.Name)
		}
		if fresh[s.Name] {
			return false, errorf(ErrIllFormed, s.Pos, "continue %s before any message: the loop would spin without communicating", s.Name)
		}
		return false, nil

	case *DoStmt:
		callee, ok := c.protos[s.Name]
		if !ok {
			return false, errorf(ErrIllFormed, s.Pos, "do %s: no protocol %s in this file", s.Name, s.Name)
		}
		for _, r := range callee.Roles {
			if !c.roles[r.Name] {
				return false, errorf(ErrIllFormed, s.Pos, "do %s: its role %s is not declared in protocol %s", s.Name, r.Name, c.proto.Name)
			}
		}
		return c.protocolFinishes(callee), nil
	}
	return false, fmt.Errorf("choreo: unknown statement %T", s)
}

// protocolFinishes reports whether a protocol's body can end, so that code
// after `do P` is reachable. It is structural, needing no other checks, and
// memoised; doCycles has ruled out infinite descent.
func (c *checker) protocolFinishes(p *Protocol) bool {
	if f, ok := c.finishes[p]; ok {
		return f
	}
	f := c.blockFinishes(p.Body)
	c.finishes[p] = f
	return f
}

func (c *checker) blockFinishes(stmts []Stmt) bool {
	for _, s := range stmts {
		if !c.stmtFinishes(s) {
			return false
		}
	}
	return true
}

func (c *checker) stmtFinishes(s Stmt) bool {
	switch s := s.(type) {
	case *ChoiceStmt:
		for _, b := range s.Branches {
			if c.blockFinishes(b.Body) {
				return true
			}
		}
		return false
	case *RecStmt:
		return c.blockFinishes(s.Body)
	case *ContinueStmt:
		return false
	case *DoStmt:
		if p, ok := c.protos[s.Name]; ok {
			return c.protocolFinishes(p)
		}
	}
	return true
}

// doCycles rejects protocols that include themselves through do, which
// would inline forever.
func (c *checker) doCycles() error {
	const (
		unvisited = iota
		active
		done
	)
	state := map[*Protocol]int{}
	var visit func(p *Protocol) error
	var walk func(stmts []Stmt) error
	walk = func(stmts []Stmt) error {
		for _, s := range stmts {
			switch s := s.(type) {
			case *ChoiceStmt:
				for _, b := range s.Branches {
					if err := walk(b.Body); err != nil {
						return err
					}
				}
			case *RecStmt:
				if err := walk(s.Body); err != nil {
					return err
				}
			case *DoStmt:
				callee, ok := c.protos[s.Name]
				if !ok {
					continue // reported by the per-protocol check
				}
				switch state[callee] {
				case active:
					return errorf(ErrIllFormed, s.Pos, "do %s: protocol %s includes itself", s.Name, s.Name)
				case unvisited:
					if err := visit(callee); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	visit = func(p *Protocol) error {
		state[p] = active
		if err := walk(p.Body); err != nil {
			return err
		}
		state[p] = done
		return nil
	}
	for _, p := range c.file.Protocols {
		if state[p] == unvisited {
			if err := visit(p); err != nil {
				return err
			}
		}
	}
	return nil
}
