package choreo

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokIdent
	tokInt    // decimal digits, optionally with a leading '-'
	tokString // text holds the unquoted value
	tokLBrace
	tokRBrace
	tokLParen
	tokRParen
	tokLBrack
	tokRBrack
	tokLAngle
	tokRAngle
	tokSemi
	tokColon
	tokPath // ::
	tokComma
	tokEq
	tokArrow
	tokHash
	tokErr // a lexical error, reported when the parser reaches it
)

// Keywords are reserved: a role, label or protocol may not be spelled like one.
// "at" is reserved too, so that "choice at A" never needs lookahead.
var keywords = map[string]bool{
	"protocol": true, "roles": true, "choice": true, "at": true, "or": true,
	"rec": true, "continue": true, "do": true,
}

type token struct {
	kind tokenKind
	text string // identifier, digits, or unquoted string value
	pos  Pos
}

// describe renders a token for "expected X, found Y" messages.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of input"
	case tokIdent:
		if keywords[t.text] {
			return "keyword '" + t.text + "'"
		}
		return "'" + t.text + "'"
	case tokInt:
		return "number " + t.text
	case tokString:
		return "string " + strconv.Quote(t.text)
	default:
		return "'" + punct[t.kind] + "'"
	}
}

var punct = map[tokenKind]string{
	tokLBrace: "{", tokRBrace: "}", tokLParen: "(", tokRParen: ")",
	tokLBrack: "[", tokRBrack: "]", tokLAngle: "<", tokRAngle: ">",
	tokSemi: ";", tokColon: ":", tokPath: "::", tokComma: ",", tokEq: "=",
	tokArrow: "->", tokHash: "#",
}

// maxTokenLen bounds identifiers, numbers and strings: nothing legitimate is
// longer, and it keeps error messages that quote a token short.
const maxTokenLen = 256

// lexer turns source into tokens on demand. It tracks line and column itself
// so that every token, and every lexical error, carries its position.
type lexer struct {
	src  string
	off  int
	line int
	col  int
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1, col: 1} }

func (l *lexer) pos() Pos { return Pos{l.line, l.col} }

// peekRune decodes the rune at the current offset; size 0 means end of input.
func (l *lexer) peekRune() (rune, int) {
	if l.off >= len(l.src) {
		return 0, 0
	}
	return utf8.DecodeRuneInString(l.src[l.off:])
}

func (l *lexer) advance(size int) {
	if l.src[l.off] == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	l.off += size
}

func (l *lexer) errorf(pos Pos, format string, args ...any) *Error {
	return errorf(ErrSyntax, pos, format, args...)
}

// skipSpace skips white space and comments. Block comments do not nest, as in Go.
func (l *lexer) skipSpace() error {
	for {
		r, size := l.peekRune()
		switch {
		case size == 0:
			return nil
		case r == utf8.RuneError && size == 1:
			return l.errorf(l.pos(), "invalid UTF-8")
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			l.advance(size)
		case strings.HasPrefix(l.src[l.off:], "//"):
			for {
				r, size := l.peekRune()
				if size == 0 || r == '\n' {
					break
				}
				if r == utf8.RuneError && size == 1 {
					return l.errorf(l.pos(), "invalid UTF-8")
				}
				l.advance(size)
			}
		case strings.HasPrefix(l.src[l.off:], "/*"):
			start := l.pos()
			l.advance(1)
			l.advance(1)
			for {
				if strings.HasPrefix(l.src[l.off:], "*/") {
					l.advance(1)
					l.advance(1)
					break
				}
				r, size := l.peekRune()
				if size == 0 {
					return l.errorf(start, "comment not terminated")
				}
				if r == utf8.RuneError && size == 1 {
					return l.errorf(l.pos(), "invalid UTF-8")
				}
				l.advance(size)
			}
		default:
			return nil
		}
	}
}

func isLetter(r rune) bool { return r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' }
func isDigit(r rune) bool  { return '0' <= r && r <= '9' }

func (l *lexer) next() (token, error) {
	if err := l.skipSpace(); err != nil {
		return token{}, err
	}
	pos := l.pos()
	r, size := l.peekRune()
	if size == 0 {
		return token{kind: tokEOF, pos: pos}, nil
	}
	switch {
	case isLetter(r):
		start := l.off
		for {
			r, size := l.peekRune()
			if size == 0 || !isLetter(r) && !isDigit(r) {
				break
			}
			l.advance(size)
		}
		text := l.src[start:l.off]
		if len(text) > maxTokenLen {
			return token{}, l.errorf(pos, "identifier longer than %d characters", maxTokenLen)
		}
		return token{kind: tokIdent, text: text, pos: pos}, nil
	case isDigit(r) || r == '-' && l.off+1 < len(l.src) && isDigit(rune(l.src[l.off+1])):
		start := l.off
		l.advance(1)
		for {
			r, size := l.peekRune()
			if size == 0 || !isDigit(r) {
				break
			}
			l.advance(size)
		}
		if r, size := l.peekRune(); size > 0 && isLetter(r) {
			return token{}, l.errorf(pos, "malformed number %s", l.src[start:l.off]+string(r))
		}
		text := l.src[start:l.off]
		if len(text) > maxTokenLen {
			return token{}, l.errorf(pos, "number longer than %d digits", maxTokenLen)
		}
		return token{kind: tokInt, text: text, pos: pos}, nil
	case r == '"':
		return l.lexString(pos)
	}
	two := ""
	if l.off+2 <= len(l.src) {
		two = l.src[l.off : l.off+2]
	}
	switch two {
	case "->":
		l.advance(1)
		l.advance(1)
		return token{kind: tokArrow, pos: pos}, nil
	case "::":
		l.advance(1)
		l.advance(1)
		return token{kind: tokPath, pos: pos}, nil
	}
	kind, ok := punctKind(r)
	if !ok {
		if r == utf8.RuneError && size == 1 {
			return token{}, l.errorf(pos, "invalid UTF-8")
		}
		return token{}, l.errorf(pos, "unexpected character %s", quoteRune(r))
	}
	l.advance(size)
	return token{kind: kind, pos: pos}, nil
}

func punctKind(r rune) (tokenKind, bool) {
	switch r {
	case '{':
		return tokLBrace, true
	case '}':
		return tokRBrace, true
	case '(':
		return tokLParen, true
	case ')':
		return tokRParen, true
	case '[':
		return tokLBrack, true
	case ']':
		return tokRBrack, true
	case '<':
		return tokLAngle, true
	case '>':
		return tokRAngle, true
	case ';':
		return tokSemi, true
	case ':':
		return tokColon, true
	case ',':
		return tokComma, true
	case '=':
		return tokEq, true
	case '#':
		return tokHash, true
	}
	return 0, false
}

// quoteString is the inverse of lexString: it escapes exactly what the
// lexer unescapes, so printed protocols parse back to the same strings.
// (strconv.Quote would write escapes such as \u00a0 the lexer refuses.)
func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func quoteRune(r rune) string {
	if r == '\'' {
		return `"'"`
	}
	q := strconv.QuoteRune(r)
	return q
}

// lexString reads a double-quoted string with Go's simple escapes. Strings
// hold capability and fact names, so they stay on one line.
func (l *lexer) lexString(pos Pos) (token, error) {
	l.advance(1) // opening quote
	var b strings.Builder
	for {
		r, size := l.peekRune()
		switch {
		case size == 0 || r == '\n':
			return token{}, l.errorf(pos, "string not terminated")
		case r == utf8.RuneError && size == 1:
			return token{}, l.errorf(l.pos(), "invalid UTF-8")
		case r < 0x20 || r == 0x7f:
			return token{}, l.errorf(l.pos(), "control character %U in string", r)
		case r == '"':
			l.advance(size)
			if b.Len() > maxTokenLen {
				return token{}, l.errorf(pos, "string longer than %d bytes", maxTokenLen)
			}
			return token{kind: tokString, text: b.String(), pos: pos}, nil
		case r == '\\':
			epos := l.pos()
			l.advance(size)
			e, esize := l.peekRune()
			var out rune
			switch e {
			case '"', '\\':
				out = e
			case 'n':
				out = '\n'
			case 't':
				out = '\t'
			default:
				if esize == 0 {
					return token{}, l.errorf(pos, "string not terminated")
				}
				return token{}, l.errorf(epos, "unknown escape \\%s in string", strings.Trim(strconv.QuoteRune(e), "'"))
			}
			l.advance(esize)
			b.WriteRune(out)
		default:
			l.advance(size)
			b.WriteRune(r)
		}
	}
}
