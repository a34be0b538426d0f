package rpc

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxEcho is how many bytes of a client's input an error message quotes.
// Parsers quote what they cannot parse, which helps for an id and turns 100 KB
// of garbage into a 100 KB error line.
const maxEcho = 64

// maxMessage bounds any status message, whatever produced it.
const maxMessage = 1024

// QuoteInput quotes client input for an error message: all of it if short,
// else its first maxEcho bytes (cut on a character boundary) and its length,
// as in "aaaa…"…(100000 bytes). Quoting also escapes anything a terminal
// would interpret.
func QuoteInput(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	return strconv.Quote(cutUTF8(s, maxEcho)) + fmt.Sprintf("…(%d bytes)", len(s))
}

// cutUTF8 returns at most n bytes of s, not splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// capMessage shortens a status message longer than maxMessage.
func capMessage(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	return cutUTF8(msg, maxMessage) + fmt.Sprintf("…(%d bytes)", len(msg))
}

// echoError is err with a message in which long inputs appear shortened.
type echoError struct {
	err error
	msg string
}

func (e *echoError) Error() string { return e.msg }
func (e *echoError) Unwrap() error { return e.err }

// shortenEcho rewrites err's message so that each input longer than maxEcho,
// quoted or bare, appears as QuoteInput shows it. Parsers also echo one token
// of what they could not parse (a multiaddr's "unknown protocol <component>"),
// so each long token between separators is shortened as well. errors.Is and
// As still see everything err wraps.
func shortenEcho(err error, inputs []string) error {
	if err == nil || len(inputs) == 0 {
		return err
	}
	// A status's text is its message, not the "rpc error: ..." of Error().
	st, isStatus := status.FromError(err)
	isStatus = isStatus && st.Code() != codes.Unknown
	msg := err.Error()
	if isStatus {
		msg = st.Message()
	}
	orig := msg
	for _, in := range inputs {
		for _, s := range echoCandidates(in) {
			q := QuoteInput(s)
			msg = strings.ReplaceAll(msg, strconv.Quote(s), q)
			msg = strings.ReplaceAll(msg, s, q)
		}
	}
	switch {
	case msg == orig:
		return err
	case isStatus:
		return status.Error(st.Code(), msg)
	}
	return &echoError{err: err, msg: msg}
}

// echoCandidates are in and its tokens longer than maxEcho, longest first, so
// a token is only shortened where the whole input was not echoed.
func echoCandidates(in string) []string {
	out := []string{in}
	for _, tok := range strings.FieldsFunc(in, isSeparator) {
		if len(tok) > maxEcho && tok != in {
			out = append(out, tok)
		}
	}
	return out
}

func isSeparator(r rune) bool {
	return r == '/' || r == ',' || r == ':' || r == '=' || unicode.IsSpace(r)
}

// longInputs lists the string and bytes fields of a request, at any depth,
// that are too long to echo whole. Only the failure path calls it.
func longInputs(req any) []string {
	m, ok := req.(proto.Message)
	if !ok || m == nil {
		return nil
	}
	var out []string
	var walk func(protoreflect.Message)
	visit := func(fd protoreflect.FieldDescriptor, v protoreflect.Value) {
		switch fd.Kind() {
		case protoreflect.StringKind:
			if s := v.String(); len(s) > maxEcho {
				out = append(out, s)
			}
		case protoreflect.BytesKind:
			if b := v.Bytes(); len(b) > maxEcho {
				out = append(out, string(b))
			}
		case protoreflect.MessageKind, protoreflect.GroupKind:
			walk(v.Message())
		}
	}
	walk = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList():
				l := v.List()
				for i := range l.Len() {
					visit(fd, l.Get(i))
				}
			case fd.IsMap():
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(fd.MapKey(), k.Value())
					visit(fd.MapValue(), mv)
					return true
				})
			default:
				visit(fd, v)
			}
			return true
		})
	}
	if m.ProtoReflect().IsValid() {
		walk(m.ProtoReflect())
	}
	return out
}
