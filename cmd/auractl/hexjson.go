package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// --hex renders bytes fields as hex in -o json. protojson cannot be told to:
// the proto3 JSON mapping fixes bytes as base64 (lnd forks the protobuf
// runtime to change that). So the protojson output is rewritten, walking it
// alongside the message's descriptor: every field whose descriptor says bytes,
// in nested messages, lists and map values alike, has its base64 string
// replaced by lowercase hex. Everything else passes through as protojson
// wrote it, in the same order.

// hexBytesJSON rewrites the protojson encoding of a message of type md.
// indent is the indent protojson was given; "" means compact.
func hexBytesJSON(data []byte, md protoreflect.MessageDescriptor, indent string) ([]byte, error) {
	var out bytes.Buffer
	if err := hexMessage(&out, data, md); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	var err error
	if indent == "" {
		err = json.Compact(&b, out.Bytes())
	} else {
		err = json.Indent(&b, out.Bytes(), "", indent)
	}
	if err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// jsonNull is how protojson writes a null value (google.protobuf.Value's
// null_value, or a null inside a Struct).
var jsonNull = []byte("null")

// hexMessage writes raw, the JSON of a message of type md.
func hexMessage(out *bytes.Buffer, raw json.RawMessage, md protoreflect.MessageDescriptor) error {
	if bytes.Equal(raw, jsonNull) {
		out.Write(raw)
		return nil
	}
	switch md.FullName() {
	case "google.protobuf.BytesValue":
		// The wrapper is its value: a bare base64 string.
		return hexString(out, raw)
	case "google.protobuf.Any":
		return hexAny(out, raw)
	}
	if special(md) {
		// Timestamps, durations, structs and the other wrappers hold no bytes.
		out.Write(raw)
		return nil
	}
	pairs, err := readObject(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", md.FullName(), err)
	}
	out.WriteByte('{')
	for i, p := range pairs {
		if i > 0 {
			out.WriteByte(',')
		}
		writeKey(out, p.key)
		fd := field(md, p.key)
		if fd == nil {
			// An extension ("[pkg.ext]") or a field this build does not
			// know: nothing to say about its type, so it stays as it is.
			out.Write(p.value)
			continue
		}
		if err := hexField(out, p.value, fd); err != nil {
			return fmt.Errorf("%s: %w", fd.FullName(), err)
		}
	}
	out.WriteByte('}')
	return nil
}

// hexField writes the JSON of one field: a map, a list or a single value.
func hexField(out *bytes.Buffer, raw json.RawMessage, fd protoreflect.FieldDescriptor) error {
	if bytes.Equal(raw, jsonNull) {
		out.Write(raw)
		return nil
	}
	switch {
	case fd.IsMap():
		pairs, err := readObject(raw)
		if err != nil {
			return err
		}
		out.WriteByte('{')
		for i, p := range pairs {
			if i > 0 {
				out.WriteByte(',')
			}
			// Map keys are strings, integers or bools, never bytes.
			writeKey(out, p.key)
			if err := hexValue(out, p.value, fd.MapValue()); err != nil {
				return err
			}
		}
		out.WriteByte('}')
		return nil
	case fd.IsList():
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return err
		}
		out.WriteByte('[')
		for i, e := range elems {
			if i > 0 {
				out.WriteByte(',')
			}
			if err := hexValue(out, e, fd); err != nil {
				return err
			}
		}
		out.WriteByte(']')
		return nil
	}
	return hexValue(out, raw, fd)
}

// hexValue writes one value of fd's type (an element, for lists and maps).
func hexValue(out *bytes.Buffer, raw json.RawMessage, fd protoreflect.FieldDescriptor) error {
	switch fd.Kind() {
	case protoreflect.BytesKind:
		return hexString(out, raw)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return hexMessage(out, raw, fd.Message())
	}
	out.Write(raw)
	return nil
}

// hexString turns a JSON string of base64 into a JSON string of hex.
func hexString(out *bytes.Buffer, raw json.RawMessage) error {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("bytes field is not a string: %w", err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("bytes field is not base64: %w", err)
	}
	out.WriteByte('"')
	out.WriteString(hex.EncodeToString(b))
	out.WriteByte('"')
	return nil
}

// hexAny rewrites a google.protobuf.Any whose type this binary knows: its
// fields sit beside "@type", or under "value" for a type with a special JSON
// form. An Any of an unknown type stays as it is.
func hexAny(out *bytes.Buffer, raw json.RawMessage) error {
	pairs, err := readObject(raw)
	if err != nil {
		return fmt.Errorf("google.protobuf.Any: %w", err)
	}
	var md protoreflect.MessageDescriptor
	for _, p := range pairs {
		if p.key != "@type" {
			continue
		}
		var url string
		if json.Unmarshal(p.value, &url) == nil {
			if mt, err := protoregistry.GlobalTypes.FindMessageByURL(url); err == nil {
				md = mt.Descriptor()
			}
		}
	}
	if md == nil {
		out.Write(raw)
		return nil
	}
	out.WriteByte('{')
	for i, p := range pairs {
		if i > 0 {
			out.WriteByte(',')
		}
		writeKey(out, p.key)
		var err error
		switch fd := field(md, p.key); {
		case p.key == "@type":
			out.Write(p.value)
		case p.key == "value" && (special(md) || md.FullName() == "google.protobuf.BytesValue" || md.FullName() == "google.protobuf.Any"):
			err = hexMessage(out, p.value, md)
		case fd != nil:
			err = hexField(out, p.value, fd)
		default:
			out.Write(p.value)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", md.FullName(), err)
		}
	}
	out.WriteByte('}')
	return nil
}

// special reports whether protojson writes md as something other than an
// object of its fields (RFC 3339 strings, bare wrapped values, free JSON).
// Any and BytesValue, which may hold bytes, are handled before this.
func special(md protoreflect.MessageDescriptor) bool {
	switch md.FullName() {
	case "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
		"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
		"google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
		"google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue":
		return true
	}
	return false
}

// field finds the field a JSON key names: its proto name, which auractl asks
// protojson for, or its JSON (lowerCamel) name.
func field(md protoreflect.MessageDescriptor, key string) protoreflect.FieldDescriptor {
	fields := md.Fields()
	if fd := fields.ByName(protoreflect.Name(key)); fd != nil {
		return fd
	}
	return fields.ByJSONName(key)
}

type jsonPair struct {
	key   string
	value json.RawMessage
}

// readObject reads a JSON object's members in their order, which a map would
// lose.
func readObject(raw json.RawMessage) ([]jsonPair, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("want a JSON object, got %.40q", raw)
	}
	var pairs []jsonPair
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key %v is not a string", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		pairs = append(pairs, jsonPair{key: key, value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return pairs, nil
}

// writeKey writes a member's key as protojson would: without the HTML
// escapes encoding/json adds by default.
func writeKey(out *bytes.Buffer, key string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(key) // a string always encodes
	out.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	out.WriteByte(':')
}
