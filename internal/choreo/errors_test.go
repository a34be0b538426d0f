package choreo

import (
	"errors"
	"strings"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

func TestErrorPositions(t *testing.T) {
	const head = "protocol P {\n    roles: A, B, C;\n"
	tests := []struct {
		name string
		src  string
		want string
		kind error
	}{
		{"missing semicolon", head + "    A -> B: Ping\n}", "4:1: expected ';' after message, found '}'", ErrSyntax},
		{"missing semicolon same line", "protocol P { roles: A, B; A -> B: X }", "1:37: expected ';' after message, found '}'", ErrSyntax},
		{"empty file", "", "1:1: expected 'protocol', found end of input", ErrSyntax},
		{"only comments", "// nothing\n/* here */", "2:11: expected 'protocol', found end of input", ErrSyntax},
		{"missing roles", "protocol P {\n  A -> B: X;\n}", "2:3: expected 'roles' declaration at start of protocol, found 'A'", ErrSyntax},
		{"missing arrow", head + "    A B: X;\n}", "3:7: expected '->' after sender, found 'B'", ErrSyntax},
		{"missing colon", head + "    A -> B X;\n}", "3:12: expected ':' after receiver, found 'X'", ErrSyntax},
		{"keyword as role", head + "    A -> choice: X;\n}", "3:10: expected receiver role after '->', found keyword 'choice'", ErrSyntax},
		{"bad label", head + "    A -> B: 42;\n}", "3:13: expected message label, found number 42", ErrSyntax},
		{"unclosed paren", head + "    A -> B: X(T;\n}", "3:16: expected ')' after payload type, found ';'", ErrSyntax},
		{"unclosed protocol", head + "    A -> B: X;\n", "4:1: expected a statement or '}' at end of protocol P, found end of input", ErrSyntax},
		{"stray character", head + "    A -> B: X; @\n}", "3:16: unexpected character '@'", ErrSyntax},
		{"unterminated comment", head + "    /* open\n}", "3:5: comment not terminated", ErrSyntax},
		{"unterminated string", head + "    A[guard_capability = \"x] -> B: X;\n}", "3:26: string not terminated", ErrSyntax},
		{"bad escape", head + "    A[guard_capability = \"a\\qb\"] -> B: X;\n}", "3:28: unknown escape \\q in string", ErrSyntax},
		{"control character", head + "    A[journal_facts = \"a\x00\"] -> B: X;\n}", "3:25: control character U+0000 in string", ErrSyntax},
		{"invalid utf8", head + "    A -> B: X; \xff\n}", "3:16: invalid UTF-8", ErrSyntax},
		{"negative cost", head + "    A[flow_cost = -5] -> B: X;\n}", "3:19: flow_cost must not be negative, found -5", ErrSyntax},
		{"cost overflow", head + "    A[flow_cost = 4294967296] -> B: X;\n}", "3:19: flow_cost 4294967296 out of range (at most 4294967295)", ErrSyntax},
		{"cost huge", head + "    A[flow_cost = 99999999999999999999999] -> B: X;\n}", "3:19: flow_cost 99999999999999999999999 out of range (at most 4294967295)", ErrSyntax},
		{"cost string", head + "    A[flow_cost = \"5\"] -> B: X;\n}", "3:19: flow_cost must be a non-negative integer, found string \"5\"", ErrSyntax},
		{"capability int", head + "    A[guard_capability = 5] -> B: X;\n}", "3:26: guard_capability must be a string, found number 5", ErrSyntax},
		{"unknown annotation", head + "    A[flow_cots = 5] -> B: X;\n}", "3:7: unknown annotation flow_cots (want guard_capability, flow_cost or journal_facts)", ErrSyntax},
		{"duplicate annotation", head + "    A[flow_cost = 5, flow_cost = 6] -> B: X;\n}", "3:22: annotation flow_cost given twice", ErrSyntax},
		{"malformed number", head + "    A[flow_cost = 5x] -> B: X;\n}", "3:19: malformed number 5x", ErrSyntax},
		{"choice without at", head + "    choice A { A -> B: X; } or { A -> B: Y; }\n}", "3:12: expected 'at' after 'choice', found 'A'", ErrSyntax},
		{"labelled branch without brace", head + "    choice at A { L: A -> B: X; }\n}", "3:22: expected '{' after branch label, found 'A'", ErrSyntax},
		{"trailing or", head + "    choice at A { L: { A -> B: X; } or }\n}", "3:40: expected a branch label ('Label: {') after 'or', found '}'", ErrSyntax},
		{"labelled junk", head + "    choice at A { L: { A -> B: X; } A -> B: Y; }\n}", "3:37: expected a branch label ('Label: {') or '}' in choice, found 'A'", ErrSyntax},
		{"or without block", head + "    choice at A { A -> B: X; } or A -> B: Y;\n}", "3:35: expected '{' after 'or', found 'A'", ErrSyntax},
		{"continue without name", head + "    rec L { A -> B: X; continue; }\n}", "3:32: expected loop name after 'continue', found ';'", ErrSyntax},
		{"too deep", "protocol P { roles: A, B;" + strings.Repeat(" rec L {", 200), "1:" + itoa(26+8*100+1) + ": nested more than 100 deep", ErrSyntax},

		{"undeclared sender", head + "    D -> B: X;\n}", "3:5: role D is not declared in protocol P", ErrIllFormed},
		{"undeclared receiver", head + "    A -> D: X;\n}", "3:10: role D is not declared in protocol P", ErrIllFormed},
		{"self message", head + "    A -> A: X;\n}", "3:10: role A sends X to itself", ErrIllFormed},
		{"duplicate role", "protocol P {\n  roles: A, B, A;\n  A -> B: X;\n}", "2:16: role A declared twice", ErrIllFormed},
		{"one role", "protocol P { roles: A; }", "1:1: protocol P needs at least two roles", ErrIllFormed},
		{"empty protocol", "protocol P { roles: A, B; }", "1:1: protocol P has no statements", ErrIllFormed},
		{"duplicate protocol", "protocol P { roles: A, B; A -> B: X; }\nprotocol P { roles: A, B; A -> B: X; }", "2:1: protocol P already declared at 1:1", ErrIllFormed},
		{"unbound continue", head + "    A -> B: X;\n    continue L;\n}", "4:5: continue L is not inside rec L", ErrIllFormed},
		{"wrong continue", head + "    rec L { A -> B: X; continue M; }\n}", "3:24: continue M is not inside rec M", ErrIllFormed},
		{"unguarded continue", head + "    rec L { continue L; }\n}", "3:13: continue L before any message: the loop would spin without communicating", ErrIllFormed},
		{"unguarded nested", head + "    rec L { rec M { continue L; } }\n}", "3:21: continue L before any message: the loop would spin without communicating", ErrIllFormed},
		{"shadowing loop", head + "    rec L { A -> B: X; rec L { B -> A: Y; } }\n}", "3:24: loop L is already defined by an enclosing rec", ErrIllFormed},
		{"empty loop", head + "    rec L { }\n}", "3:5: loop L is empty", ErrIllFormed},
		{"after continue", head + "    rec L { A -> B: X; continue L; B -> A: Y; }\n}", "3:36: statement is unreachable: it follows continue", ErrIllFormed},
		{"after endless loop", head + "    rec L { A -> B: X; continue L; }\n    B -> A: Y;\n}", "4:5: statement is unreachable: it never finishes", ErrIllFormed},
		{"one branch", head + "    choice at A { A -> B: X; }\n}", "3:5: choice at A needs at least two branches", ErrIllFormed},
		{"branch not from decider", head + "    choice at A { B -> A: X; } or { A -> B: Y; }\n}", "3:19: a branch of the choice at A must start with a message from A", ErrIllFormed},
		{"branch starts with loop", head + "    choice at A { L: { rec R { A -> B: X; } } or M: { A -> B: Y; } }\n}", "3:24: a branch of the choice at A must start with a message from A", ErrIllFormed},
		{"empty branch", head + "    choice at A { L: { } or M: { A -> B: Y; } }\n}", "3:19: empty branch in choice at A", ErrIllFormed},
		{"duplicate label", head + "    choice at A { L: { A -> B: X; } or L: { A -> B: Y; } }\n}", "3:40: branch label L already used at 3:19 in this choice", ErrIllFormed},
		{"duplicate unlabelled", head + "    choice at A { A -> B: X; } or { A -> C: X; }\n}", "3:35: branch label X already used at 3:17 in this choice", ErrIllFormed},
		{"same first message", head + "    choice at A { L: { A -> B: X; } or M: { A -> B: X; } }\n}", "3:45: branches L and M both start with A -> B: X; B could not tell them apart", ErrIllFormed},
		{"undeclared decider", head + "    choice at D { D -> B: X; } or { D -> B: Y; }\n}", "3:15: role D is not declared in protocol P", ErrIllFormed},
		{"do unknown", head + "    do Q;\n}", "3:5: do Q: no protocol Q in this file", ErrIllFormed},
		{"do missing role", "protocol Q { roles: A, Z; A -> Z: X; }\n" + head + "    do Q;\n}", "4:5: do Q: its role Z is not declared in protocol P", ErrIllFormed},
		{"do cycle", "protocol Q { roles: A, B; do P; }\nprotocol P { roles: A, B; do Q; }", "2:27: do Q: protocol Q includes itself", ErrIllFormed},
		{"do self", "protocol Q { roles: A, B; A -> B: X; do Q; }", "1:38: do Q: protocol Q includes itself", ErrIllFormed},

		{"not realizable", head + "    choice at A { A -> B: X; B -> C: Y; } or { A -> B: Z; }\n}",
			"3:5: role C cannot tell which branch of the choice at A was taken: in branch X it receives Y from B (3:30), in branch Z it does nothing more", ErrNotRealizable},
		{"different senders", head + "    choice at A { A -> B: X; B -> C: Y; } or { A -> B: Z; A -> C: Y; }\n}",
			"3:5: role C cannot tell which branch of the choice at A was taken: in branch X it receives Y from B (3:30), in branch Z it receives Y from A (3:59)", ErrNotRealizable},
		{"inner loop restarts outer", head + "    rec O {\n        A -> C: X;\n        rec I { choice at A { L: { A -> B: L; continue O; } or E: { A -> B: E; } } }\n        A -> C: Y;\n    }\n}",
			"5:17: role C cannot tell which branch of the choice at A was taken: in branch L it goes back to loop O, in branch E it receives Y from A (6:9)", ErrNotRealizable},
		{"same label different payload", head + "    choice at A { A -> B: X; B -> C: Y(T); } or { A -> B: Z; B -> C: Y(U); }\n}",
			"3:5: role C cannot tell which branch of the choice at A was taken: in branch X it receives Y from B (3:30), in branch Z it receives Y from B (3:62)", ErrNotRealizable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load([]byte(tt.src))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n  %q\nwant\n  %q", err.Error(), tt.want)
			}
			if !errors.Is(err, tt.kind) || !errors.Is(err, core.ErrInvalidArgument) {
				t.Errorf("error %v does not wrap %v and core.ErrInvalidArgument", err, tt.kind)
			}
			var pe *Error
			if !errors.As(err, &pe) || !pe.Pos.IsValid() {
				t.Errorf("error %v carries no position", err)
			}
		})
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

func TestUnknownProtocolAndRole(t *testing.T) {
	f, err := Parse([]byte("protocol P { roles: A, B; A -> B: X; }"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Project(f, "Q"); !errors.Is(err, ErrUnknown) || !errors.Is(err, core.ErrNotFound) {
		t.Errorf("unknown protocol: %v", err)
	}
	p, err := Project(f, "P")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Local("C"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("unknown role: %v", err)
	}
	if _, err := p.Machine("C"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("unknown role machine: %v", err)
	}
}

// Attributes are kept as written, whatever their keys.
func TestAttributesKept(t *testing.T) {
	f, err := Parse([]byte(`#[namespace = "ns", version = 2]
#[experimental]
#[mode = fast]
protocol P { roles: A, B; A -> B: X; }`))
	if err != nil {
		t.Fatal(err)
	}
	p := f.Protocols[0]
	if v, ok := p.Attr("namespace"); !ok || v.Kind != ValueString || v.Text != "ns" {
		t.Errorf("namespace = %+v %v", v, ok)
	}
	if v, ok := p.Attr("version"); !ok || v.Kind != ValueInt || v.Text != "2" {
		t.Errorf("version = %+v %v", v, ok)
	}
	if v, ok := p.Attr("experimental"); !ok || v.Kind != ValueNone {
		t.Errorf("experimental = %+v %v", v, ok)
	}
	if v, ok := p.Attr("mode"); !ok || v.Kind != ValueIdent || v.Text != "fast" {
		t.Errorf("mode = %+v %v", v, ok)
	}
	if _, ok := p.Attr("missing"); ok {
		t.Error("missing attribute found")
	}
}

// A protocol whose projection would be exponentially large is refused with
// an error, not printed for hours.
func TestProjectionSizeBound(t *testing.T) {
	var b strings.Builder
	b.WriteString("protocol Big { roles: A, B;\n")
	for range 20 {
		b.WriteString("choice at A { A -> B: L; } or { A -> B: R; }\n")
	}
	b.WriteString("}\n")
	_, _, err := Load([]byte(b.String()))
	if !errors.Is(err, ErrNotRealizable) || !strings.Contains(err.Error(), "larger than 65536 steps") {
		t.Errorf("error %v", err)
	}
}
