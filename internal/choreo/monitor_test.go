package choreo

// A monitor for the asynchronous semantics of global protocols (Deniélou and
// Yoshida's labelled transition system for global types): it consumes send
// and receive events and says whether the sequence so far is a trace of the
// protocol. Tests use it to check that projected machines, run against each
// other, only do what the global protocol allows.
//
// A message p -> q: l is first sent (it becomes "in transit") and later
// received. Actions of roles a message does not concern may overtake it: an
// event whose subject is neither p nor q may happen in its continuation
// before the message is sent, and one whose subject is not q may happen
// before it is received. Through a choice, such an event must be possible
// in every branch.

type gNode interface{}

type gMsg struct {
	from, to, label string
	transit         bool
	cont            gNode
}

type gChoice struct {
	at       string
	branches []gNode // each a *gMsg from at
}

type gRec struct {
	name string
	body gNode
}

type gVar struct{ rec *gRec }

type gEnd struct{}

type event struct {
	send     bool
	from, to string
	label    string
}

func (e event) subject() string {
	if e.send {
		return e.from
	}
	return e.to
}

// buildGlobal turns protocol p of f into a global type tree, inlining do.
func buildGlobal(f *File, p *Protocol) gNode {
	protos := map[string]*Protocol{}
	for _, q := range f.Protocols {
		protos[q.Name] = q
	}
	var block func(stmts []Stmt, env map[string]*gRec, k gNode) gNode
	block = func(stmts []Stmt, env map[string]*gRec, k gNode) gNode {
		cur := k
		for i := len(stmts) - 1; i >= 0; i-- {
			switch s := stmts[i].(type) {
			case *MessageStmt:
				cur = &gMsg{from: s.From, to: s.To, label: s.Label, cont: cur}
			case *ContinueStmt:
				cur = &gVar{rec: env[s.Name]}
			case *RecStmt:
				r := &gRec{name: s.Name}
				inner := map[string]*gRec{s.Name: r}
				for n, b := range env {
					if n != s.Name {
						inner[n] = b
					}
				}
				r.body = block(s.Body, inner, cur)
				cur = r
			case *DoStmt:
				cur = block(protos[s.Name].Body, map[string]*gRec{}, cur)
			case *ChoiceStmt:
				c := &gChoice{at: s.At}
				for _, b := range s.Branches {
					c.branches = append(c.branches, block(b.Body, env, cur))
				}
				cur = c
			}
		}
		return cur
	}
	return block(p.Body, map[string]*gRec{}, &gEnd{})
}

// gStep returns the global type after e, or false if e is not allowed.
//
// Loops need care. A role with no part in a loop may act before the loop
// ends (projection lets it: its local type skips the loop), so an event may
// overtake a whole loop, provided it is consumed on the loop's exit paths.
// This is the coinductive reading of the permutation rule: while stepping
// through loop R, reaching R again is taken as success, with the stepped
// loop R' in its place; at least one path must really consume the event, or
// a loop without exits would let anything through.
func gStep(g gNode, e event) (gNode, bool) {
	n, ok, consumed := gStepIn(g, e, map[*gRec]*gRec{})
	return n, ok && consumed
}

// stepping maps each loop being stepped through, on the current path, to
// the stepped loop that replaces it.
func gStepIn(g gNode, e event, stepping map[*gRec]*gRec) (gNode, bool, bool) {
	switch t := g.(type) {
	case *gVar:
		if r, ok := stepping[t.rec]; ok {
			return &gVar{rec: r}, true, false
		}
		return gStepIn(t.rec, e, stepping)
	case *gRec:
		if r, ok := stepping[t]; ok {
			return &gVar{rec: r}, true, false
		}
		r := &gRec{name: t.name}
		stepping[t] = r
		body, ok, consumed := gStepIn(t.body, e, stepping)
		delete(stepping, t)
		if !ok {
			return nil, false, false
		}
		r.body = body
		return r, true, consumed
	case *gMsg:
		if !t.transit {
			if e.send && e.from == t.from && e.to == t.to && e.label == t.label {
				return &gMsg{from: t.from, to: t.to, label: t.label, transit: true, cont: t.cont}, true, true
			}
			if s := e.subject(); s == t.from || s == t.to {
				return nil, false, false
			}
		} else {
			if !e.send && e.from == t.from && e.to == t.to && e.label == t.label {
				return t.cont, true, true
			}
			if e.subject() == t.to {
				return nil, false, false
			}
		}
		c, ok, consumed := gStepIn(t.cont, e, stepping)
		if !ok {
			return nil, false, false
		}
		return &gMsg{from: t.from, to: t.to, label: t.label, transit: t.transit, cont: c}, true, consumed
	case *gChoice:
		if e.send && e.from == t.at {
			for _, b := range t.branches {
				if m := b.(*gMsg); m.to == e.to && m.label == e.label {
					return gStepIn(b, e, stepping)
				}
			}
			return nil, false, false
		}
		out := &gChoice{at: t.at}
		consumed := false
		for _, b := range t.branches {
			nb, ok, c := gStepIn(b, e, stepping)
			if !ok {
				return nil, false, false
			}
			consumed = consumed || c
			out.branches = append(out.branches, nb)
		}
		return out, true, consumed
	}
	return nil, false, false
}

// gFinished reports whether nothing remains to happen. A loop stepped
// through stays wrapped around what remains of its body.
func gFinished(g gNode) bool {
	switch t := g.(type) {
	case *gEnd:
		return true
	case *gRec:
		return gFinished(t.body)
	}
	return false
}
