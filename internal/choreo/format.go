package choreo

import (
	"strings"
)

// Format prints protocols in canonical form: four-space indentation, one
// statement a line, comments dropped, a choice in the form it was written.
// Parsing the output gives the same protocols back (positions aside), so
// Format(Parse(Format(x))) == Format(x).
func Format(f *File) string {
	var b strings.Builder
	for i, p := range f.Protocols {
		if i > 0 {
			b.WriteByte('\n')
		}
		FormatProtocol(&b, p)
	}
	return b.String()
}

// FormatProtocol prints one protocol to b.
func FormatProtocol(b *strings.Builder, p *Protocol) {
	for _, a := range p.Attrs {
		b.WriteString("#[")
		b.WriteString(a.Key)
		if a.Value.Kind != ValueNone {
			b.WriteString(" = ")
			writeValue(b, a.Value)
		}
		b.WriteString("]\n")
	}
	b.WriteString("protocol ")
	b.WriteString(p.Name)
	b.WriteString(" {\n    roles: ")
	b.WriteString(strings.Join(p.RoleNames(), ", "))
	b.WriteString(";\n")
	writeStmts(b, p.Body, 1)
	b.WriteString("}\n")
}

func writeValue(b *strings.Builder, v Value) {
	if v.Kind == ValueString {
		b.WriteString(quoteString(v.Text))
		return
	}
	b.WriteString(v.Text)
}

func indent(b *strings.Builder, n int) {
	for range n {
		b.WriteString("    ")
	}
}

func writeStmts(b *strings.Builder, stmts []Stmt, depth int) {
	for _, s := range stmts {
		indent(b, depth)
		switch s := s.(type) {
		case *MessageStmt:
			b.WriteString(s.From)
			if !s.Ann.IsZero() {
				b.WriteByte('[')
				writeAnnItems(b, s.Ann)
				b.WriteByte(']')
			}
			b.WriteString(" -> ")
			b.WriteString(s.To)
			b.WriteString(": ")
			writeMsg(b, s.Label, s.Type)
			b.WriteString(";\n")
		case *ContinueStmt:
			b.WriteString("continue ")
			b.WriteString(s.Name)
			b.WriteString(";\n")
		case *DoStmt:
			b.WriteString("do ")
			b.WriteString(s.Name)
			b.WriteString(";\n")
		case *RecStmt:
			b.WriteString("rec ")
			b.WriteString(s.Name)
			b.WriteString(" {\n")
			writeStmts(b, s.Body, depth+1)
			indent(b, depth)
			b.WriteString("}\n")
		case *ChoiceStmt:
			b.WriteString("choice at ")
			b.WriteString(s.At)
			labelled := len(s.Branches) > 0 && s.Branches[0].Explicit
			if labelled {
				b.WriteString(" {\n")
				for i, br := range s.Branches {
					indent(b, depth+1)
					if i > 0 {
						b.WriteString("or ")
					}
					b.WriteString(br.Label)
					b.WriteString(": {\n")
					writeStmts(b, br.Body, depth+2)
					indent(b, depth+1)
					b.WriteString("}\n")
				}
				indent(b, depth)
				b.WriteString("}\n")
				continue
			}
			for i, br := range s.Branches {
				if i > 0 {
					b.WriteString(" or")
				}
				b.WriteString(" {\n")
				writeStmts(b, br.Body, depth+1)
				indent(b, depth)
				b.WriteByte('}')
			}
			b.WriteByte('\n')
		}
	}
}
