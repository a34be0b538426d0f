package choreo

import (
	"strconv"
	"strings"
)

// maxDepth bounds the nesting of choices, loops and type arguments. The parser
// is recursive; without a bound a hostile file of ten million '{' would
// exhaust the stack, which Go cannot recover from.
const maxDepth = 100

// Parse reads a source text into protocols. It checks only the syntax (and
// the values of annotations); Check applies the rules of the language and
// Project the realizability. Errors are *Error wrapping ErrSyntax.
func Parse(src []byte) (*File, error) {
	p := &parser{lex: newLexer(string(src))}
	f, err := p.file()
	if err != nil {
		return nil, err
	}
	return f, nil
}

type parser struct {
	lex   *lexer
	buf   []token // lookahead
	depth int
}

// peek returns the token i places ahead (0 = next) without consuming it.
// A lexical error becomes a tokErr token, so it is reported when, and only
// if, the parser gets there: the first error in the text wins.
func (p *parser) peek(i int) token {
	for len(p.buf) <= i {
		if n := len(p.buf); n > 0 && (p.buf[n-1].kind == tokEOF || p.buf[n-1].kind == tokErr) {
			p.buf = append(p.buf, p.buf[n-1])
			continue
		}
		t, err := p.lex.next()
		if err != nil {
			e := err.(*Error)
			t = token{kind: tokErr, text: e.Msg, pos: e.Pos}
		}
		p.buf = append(p.buf, t)
	}
	return p.buf[i]
}

func (p *parser) take() token {
	t := p.peek(0)
	// The buffer holds at most two tokens; shifting in place keeps its
	// array, where reslicing from the front would reallocate on every token.
	n := copy(p.buf, p.buf[1:])
	p.buf = p.buf[:n]
	return t
}

func (p *parser) is(kind tokenKind) bool { return p.peek(0).kind == kind }

func (p *parser) isKeyword(kw string) bool {
	t := p.peek(0)
	return t.kind == tokIdent && t.text == kw
}

// unexpected reports t where something else was wanted: "expected what,
// found t". A lexical error at t is reported as itself.
func (p *parser) unexpected(t token, what string) *Error {
	if t.kind == tokErr {
		return errorf(ErrSyntax, t.pos, "%s", t.text)
	}
	return errorf(ErrSyntax, t.pos, "expected %s, found %s", what, t.describe())
}

func (p *parser) expect(kind tokenKind, context string) (token, error) {
	t := p.peek(0)
	if t.kind != kind {
		what := "'" + punct[kind] + "'"
		if context != "" {
			what += " " + context
		}
		return t, p.unexpected(t, what)
	}
	return p.take(), nil
}

func (p *parser) expectKeyword(kw, context string) (token, error) {
	t := p.peek(0)
	if t.kind != tokIdent || t.text != kw {
		what := "'" + kw + "'"
		if context != "" {
			what += " " + context
		}
		return t, p.unexpected(t, what)
	}
	return p.take(), nil
}

// name reads an identifier that is not a keyword; what names it in errors.
func (p *parser) name(what string) (token, error) {
	t := p.peek(0)
	if t.kind != tokIdent || keywords[t.text] {
		return t, p.unexpected(t, what)
	}
	return p.take(), nil
}

func (p *parser) enter(pos Pos) error {
	p.depth++
	if p.depth > maxDepth {
		return errorf(ErrSyntax, pos, "nested more than %d deep", maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// file = protocol { protocol } EOF .
func (p *parser) file() (*File, error) {
	f := &File{}
	for {
		if p.is(tokEOF) && len(f.Protocols) > 0 {
			return f, nil
		}
		pr, err := p.protocol()
		if err != nil {
			return nil, err
		}
		f.Protocols = append(f.Protocols, pr)
	}
}

// protocol = { attribute } "protocol" name "{" roles { stmt } "}" .
func (p *parser) protocol() (*Protocol, error) {
	var attrs []Attr
	for p.is(tokHash) {
		a, err := p.attribute()
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a...)
	}
	kw, err := p.expectKeyword("protocol", "")
	if err != nil {
		return nil, err
	}
	name, err := p.name("protocol name")
	if err != nil {
		return nil, err
	}
	pr := &Protocol{Pos: kw.pos, Name: name.text, Attrs: attrs}
	if _, err := p.expect(tokLBrace, "after protocol name"); err != nil {
		return nil, err
	}
	if pr.Roles, err = p.roles(); err != nil {
		return nil, err
	}
	if pr.Body, err = p.stmts(); err != nil {
		return nil, err
	}
	if _, err := p.expect(tokRBrace, "at end of protocol"); err != nil {
		if t := p.peek(0); t.kind != tokErr {
			return nil, p.unexpected(t, "a statement or '}' at end of protocol "+pr.Name)
		}
		return nil, err
	}
	return pr, nil
}

// attribute = "#" "[" item { "," item } "]" ; item = name [ "=" value ] .
func (p *parser) attribute() ([]Attr, error) {
	p.take() // '#'
	if _, err := p.expect(tokLBrack, "after '#'"); err != nil {
		return nil, err
	}
	var attrs []Attr
	for {
		key, err := p.name("attribute name")
		if err != nil {
			return nil, err
		}
		a := Attr{Pos: key.pos, Key: key.text}
		if p.is(tokEq) {
			p.take()
			if a.Value, err = p.value(); err != nil {
				return nil, err
			}
		}
		attrs = append(attrs, a)
		if !p.is(tokComma) {
			break
		}
		p.take()
	}
	if _, err := p.expect(tokRBrack, "after attribute"); err != nil {
		return nil, err
	}
	return attrs, nil
}

func (p *parser) value() (Value, error) {
	t := p.peek(0)
	switch t.kind {
	case tokString:
		p.take()
		return Value{Kind: ValueString, Text: t.text}, nil
	case tokInt:
		p.take()
		return Value{Kind: ValueInt, Text: t.text}, nil
	case tokIdent:
		p.take()
		return Value{Kind: ValueIdent, Text: t.text}, nil
	}
	return Value{}, p.unexpected(t, "a value (string, number or name)")
}

// roles = "roles" ":" name { "," name } ";" .
func (p *parser) roles() ([]Role, error) {
	if _, err := p.expectKeyword("roles", "declaration at start of protocol"); err != nil {
		return nil, err
	}
	if _, err := p.expect(tokColon, "after 'roles'"); err != nil {
		return nil, err
	}
	var roles []Role
	for {
		t, err := p.name("role name")
		if err != nil {
			return nil, err
		}
		roles = append(roles, Role{Pos: t.pos, Name: t.text})
		if !p.is(tokComma) {
			break
		}
		p.take()
	}
	if _, err := p.expect(tokSemi, "after roles"); err != nil {
		return nil, err
	}
	return roles, nil
}

// stmts reads statements up to, not including, the closing '}'.
func (p *parser) stmts() ([]Stmt, error) {
	var out []Stmt
	for {
		t := p.peek(0)
		if t.kind == tokRBrace || t.kind == tokEOF {
			return out, nil
		}
		s, err := p.stmt()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
}

func (p *parser) stmt() (Stmt, error) {
	t := p.peek(0)
	if t.kind == tokIdent {
		switch t.text {
		case "choice":
			return p.choice()
		case "rec":
			return p.rec()
		case "continue":
			p.take()
			n, err := p.name("loop name after 'continue'")
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(tokSemi, "after continue"); err != nil {
				return nil, err
			}
			return &ContinueStmt{Pos: t.pos, Name: n.text}, nil
		case "do":
			p.take()
			n, err := p.name("protocol name after 'do'")
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(tokSemi, "after do"); err != nil {
				return nil, err
			}
			return &DoStmt{Pos: t.pos, Name: n.text}, nil
		}
		if !keywords[t.text] {
			return p.message()
		}
	}
	return nil, p.unexpected(t, "a statement (message, choice, rec, continue or do)")
}

// message = name [ annotations ] "->" name ":" name [ "(" type ")" ] ";" .
func (p *parser) message() (Stmt, error) {
	from := p.take()
	m := &MessageStmt{Pos: from.pos, From: from.text}
	if p.is(tokLBrack) {
		m.AnnPos = p.peek(0).pos
		var err error
		if m.Ann, err = p.annotations(); err != nil {
			return nil, err
		}
	}
	if _, err := p.expect(tokArrow, "after sender"); err != nil {
		return nil, err
	}
	to, err := p.name("receiver role after '->'")
	if err != nil {
		return nil, err
	}
	m.To, m.ToPos = to.text, to.pos
	if _, err := p.expect(tokColon, "after receiver"); err != nil {
		return nil, err
	}
	label, err := p.name("message label")
	if err != nil {
		return nil, err
	}
	m.Label = label.text
	if p.is(tokLParen) {
		lp := p.take()
		if m.Type, err = p.typeExpr(lp.pos); err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "after payload type"); err != nil {
			return nil, err
		}
	}
	if _, err := p.expect(tokSemi, "after message"); err != nil {
		return nil, err
	}
	return m, nil
}

// typeExpr = name { "::" name } [ "<" typeExpr { "," typeExpr } ">" ] .
// Types are opaque to the language; they are kept as normalised text for the
// handlers that encode and decode payloads.
func (p *parser) typeExpr(at Pos) (string, error) {
	if err := p.enter(at); err != nil {
		return "", err
	}
	defer p.leave()
	t, err := p.name("payload type")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(t.text)
	for p.is(tokPath) {
		p.take()
		t, err := p.name("type name after '::'")
		if err != nil {
			return "", err
		}
		b.WriteString("::")
		b.WriteString(t.text)
	}
	if p.is(tokLAngle) {
		la := p.take()
		b.WriteByte('<')
		for i := 0; ; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			arg, err := p.typeExpr(la.pos)
			if err != nil {
				return "", err
			}
			b.WriteString(arg)
			if !p.is(tokComma) {
				break
			}
			p.take()
		}
		if _, err := p.expect(tokRAngle, "after type arguments"); err != nil {
			return "", err
		}
		b.WriteByte('>')
	}
	return b.String(), nil
}

// annotations = "[" annot { "," annot } "]" ; annot = name "=" value .
func (p *parser) annotations() (Annotations, error) {
	p.take() // '['
	var a Annotations
	for {
		key, err := p.name("annotation name")
		if err != nil {
			return a, err
		}
		if _, err := p.expect(tokEq, "after annotation name"); err != nil {
			return a, err
		}
		vt := p.peek(0)
		v, err := p.value()
		if err != nil {
			return a, err
		}
		if a.has(key.text) {
			return a, errorf(ErrSyntax, key.pos, "annotation %s given twice", key.text)
		}
		switch key.text {
		case annotGuard, annotFacts:
			if v.Kind != ValueString {
				return a, errorf(ErrSyntax, vt.pos, "%s must be a string, found %s", key.text, vt.describe())
			}
			if v.Text == "" {
				return a, errorf(ErrSyntax, vt.pos, "%s must not be empty", key.text)
			}
			if key.text == annotGuard {
				a.GuardCapability = v.Text
			} else {
				a.JournalFacts = v.Text
			}
		case annotFlowCost:
			if v.Kind != ValueInt {
				return a, errorf(ErrSyntax, vt.pos, "flow_cost must be a non-negative integer, found %s", vt.describe())
			}
			if strings.HasPrefix(v.Text, "-") {
				return a, errorf(ErrSyntax, vt.pos, "flow_cost must not be negative, found %s", v.Text)
			}
			// Budgets count in uint32 units; a larger cost could never be paid.
			n, err := strconv.ParseUint(v.Text, 10, 32)
			if err != nil {
				return a, errorf(ErrSyntax, vt.pos, "flow_cost %s out of range (at most 4294967295)", v.Text)
			}
			a.FlowCost = uint32(n)
		default:
			return a, errorf(ErrSyntax, key.pos, "unknown annotation %s (want guard_capability, flow_cost or journal_facts)", key.text)
		}
		a.Order = append(a.Order, key.text)
		if !p.is(tokComma) {
			break
		}
		p.take()
	}
	if _, err := p.expect(tokRBrack, "after annotations"); err != nil {
		return a, err
	}
	return a, nil
}

// rec = "rec" name "{" { stmt } "}" [ ";" ] .
func (p *parser) rec() (Stmt, error) {
	kw := p.take()
	if err := p.enter(kw.pos); err != nil {
		return nil, err
	}
	defer p.leave()
	n, err := p.name("loop name after 'rec'")
	if err != nil {
		return nil, err
	}
	body, err := p.block("after loop name")
	if err != nil {
		return nil, err
	}
	p.optionalSemi()
	return &RecStmt{Pos: kw.pos, Name: n.text, Body: body}, nil
}

// block = "{" { stmt } "}" .
func (p *parser) block(context string) ([]Stmt, error) {
	if _, err := p.expect(tokLBrace, context); err != nil {
		return nil, err
	}
	body, err := p.stmts()
	if err != nil {
		return nil, err
	}
	if _, err := p.expect(tokRBrace, "at end of block"); err != nil {
		return nil, err
	}
	return body, nil
}

// A ';' after a closing brace is accepted and ignored, for writers used to
// C-like languages.
func (p *parser) optionalSemi() {
	if p.is(tokSemi) {
		p.take()
	}
}

// choice = "choice" "at" name "{" labelled { [ "or" ] labelled } "}"
//
//	| "choice" "at" name block { "or" block } .
//
// labelled = name ":" block .
//
// In the second form a branch's label is the label of its first message.
func (p *parser) choice() (Stmt, error) {
	kw := p.take()
	if err := p.enter(kw.pos); err != nil {
		return nil, err
	}
	defer p.leave()
	if _, err := p.expectKeyword("at", "after 'choice'"); err != nil {
		return nil, err
	}
	at, err := p.name("deciding role after 'choice at'")
	if err != nil {
		return nil, err
	}
	c := &ChoiceStmt{Pos: kw.pos, At: at.text, AtPos: at.pos}
	lb, err := p.expect(tokLBrace, "after deciding role")
	if err != nil {
		return nil, err
	}
	if p.peek(0).kind == tokIdent && !keywords[p.peek(0).text] && p.peek(1).kind == tokColon {
		for {
			label := p.take()
			p.take() // ':'
			body, err := p.block("after branch label")
			if err != nil {
				return nil, err
			}
			c.Branches = append(c.Branches, &ChoiceBranch{Pos: label.pos, Label: label.text, Explicit: true, Body: body})
			or := p.isKeyword("or")
			if or {
				p.take()
			}
			t := p.peek(0)
			if t.kind == tokRBrace && !or {
				p.take()
				break
			}
			if t.kind != tokIdent || keywords[t.text] || p.peek(1).kind != tokColon {
				if or {
					return nil, p.unexpected(t, "a branch label ('Label: {') after 'or'")
				}
				return nil, p.unexpected(t, "a branch label ('Label: {') or '}' in choice")
			}
		}
	} else {
		body, err := p.stmts()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRBrace, "at end of branch"); err != nil {
			return nil, err
		}
		c.Branches = append(c.Branches, &ChoiceBranch{Pos: lb.pos, Body: body})
		for p.isKeyword("or") {
			p.take()
			t := p.peek(0)
			body, err := p.block("after 'or'")
			if err != nil {
				return nil, err
			}
			c.Branches = append(c.Branches, &ChoiceBranch{Pos: t.pos, Body: body})
		}
		// The label of an unlabelled branch is that of its first message;
		// Check reports branches that do not start with one.
		for _, b := range c.Branches {
			if len(b.Body) > 0 {
				if m, ok := b.Body[0].(*MessageStmt); ok {
					b.Label = m.Label
				}
			}
		}
	}
	p.optionalSemi()
	return c, nil
}
