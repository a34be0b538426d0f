package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
)

// hexTestMessage builds a message type with bytes in every place a field can
// hold them: singular, repeated, map values, nested messages (singular,
// repeated, in maps), the BytesValue wrapper and an Any; plus fields that
// must pass untouched.
func hexTestMessage(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	typ := func(k descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto_Type {
		return k.Enum()
	}
	const (
		tBytes   = descriptorpb.FieldDescriptorProto_TYPE_BYTES
		tString  = descriptorpb.FieldDescriptorProto_TYPE_STRING
		tInt64   = descriptorpb.FieldDescriptorProto_TYPE_INT64
		tMessage = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	)
	f := func(name string, num int32, label *descriptorpb.FieldDescriptorProto_Label, k descriptorpb.FieldDescriptorProto_Type, msg string) *descriptorpb.FieldDescriptorProto {
		fd := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: label, Type: typ(k)}
		if msg != "" {
			fd.TypeName = proto.String(msg)
		}
		return fd
	}
	entry := func(name string, v *descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{
			Name:    proto.String(name),
			Field:   []*descriptorpb.FieldDescriptorProto{f("key", 1, opt, tString, ""), v},
			Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
		}
	}
	file := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("hextest.proto"),
		Package:    proto.String("hextest"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"google/protobuf/wrappers.proto", "google/protobuf/any.proto", "google/protobuf/timestamp.proto", "google/protobuf/struct.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Inner"), Field: []*descriptorpb.FieldDescriptorProto{
				f("blob", 1, opt, tBytes, ""),
				f("note", 2, opt, tString, ""),
			}},
			{
				Name: proto.String("Outer"),
				Field: []*descriptorpb.FieldDescriptorProto{
					f("payload", 1, opt, tBytes, ""),
					f("chunks", 2, rep, tBytes, ""),
					f("by_name", 3, rep, tMessage, ".hextest.Outer.ByNameEntry"),
					f("inner", 4, opt, tMessage, ".hextest.Inner"),
					f("inners", 5, rep, tMessage, ".hextest.Inner"),
					f("inner_by_name", 6, rep, tMessage, ".hextest.Outer.InnerByNameEntry"),
					f("wrapped", 7, opt, tMessage, ".google.protobuf.BytesValue"),
					f("any", 8, rep, tMessage, ".google.protobuf.Any"),
					f("count", 9, opt, tInt64, ""),
					f("text", 10, opt, tString, ""),
					f("at", 11, opt, tMessage, ".google.protobuf.Timestamp"),
					f("free", 12, opt, tMessage, ".google.protobuf.Struct"),
				},
				NestedType: []*descriptorpb.DescriptorProto{
					entry("ByNameEntry", f("value", 2, opt, tBytes, "")),
					entry("InnerByNameEntry", f("value", 2, opt, tMessage, ".hextest.Inner")),
				},
			},
		},
	}
	fd, err := protodesc.NewFile(file, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().ByName("Outer")
}

func TestHexBytesJSON(t *testing.T) {
	md := hexTestMessage(t)
	inner := md.Fields().ByName("inner").Message()
	newInner := func(b []byte, note string) protoreflect.Message {
		m := dynamicpb.NewMessage(inner)
		m.Set(inner.Fields().ByName("blob"), protoreflect.ValueOfBytes(b))
		m.Set(inner.Fields().ByName("note"), protoreflect.ValueOfString(note))
		return m
	}
	m := dynamicpb.NewMessage(md)
	fields := md.Fields()
	m.Set(fields.ByName("payload"), protoreflect.ValueOfBytes([]byte{0xde, 0xad, 0xbe, 0xef}))
	chunks := m.Mutable(fields.ByName("chunks")).List()
	chunks.Append(protoreflect.ValueOfBytes([]byte{0x00}))
	chunks.Append(protoreflect.ValueOfBytes([]byte{0xff, 0xfe}))
	byName := m.Mutable(fields.ByName("by_name")).Map()
	byName.Set(protoreflect.ValueOfString("k<&>").MapKey(), protoreflect.ValueOfBytes([]byte{0x01, 0x02}))
	m.Set(fields.ByName("inner"), protoreflect.ValueOfMessage(newInner([]byte{0xab}, "q83v"))) // base64 of ab cd ef, which is text
	inners := m.Mutable(fields.ByName("inners")).List()
	inners.Append(protoreflect.ValueOfMessage(newInner([]byte{0x10}, "a")))
	inners.Append(protoreflect.ValueOfMessage(newInner(nil, "b")))
	m.Mutable(fields.ByName("inner_by_name")).Map().Set(protoreflect.ValueOfString("x").MapKey(), protoreflect.ValueOfMessage(newInner([]byte{0x20, 0x21}, "")))
	m.Set(fields.ByName("wrapped"), protoreflect.ValueOfMessage(wrapperspb.Bytes([]byte{0x7f}).ProtoReflect()))
	anyFact, err := anypb.New(&journalv1.Fact{Id: "f1", Payload: []byte{0xca, 0xfe}, Signature: []byte{0x51}})
	if err != nil {
		t.Fatal(err)
	}
	anyBytes, err := anypb.New(wrapperspb.Bytes([]byte{0x99}))
	if err != nil {
		t.Fatal(err)
	}
	anyDuration, err := anypb.New(durationpb.New(1500000000))
	if err != nil {
		t.Fatal(err)
	}
	anys := m.Mutable(fields.ByName("any")).List()
	for _, a := range []*anypb.Any{anyFact, anyBytes, anyDuration} {
		anys.Append(protoreflect.ValueOfMessage(a.ProtoReflect()))
	}
	m.Set(fields.ByName("count"), protoreflect.ValueOfInt64(1<<40))
	m.Set(fields.ByName("text"), protoreflect.ValueOfString("AAEC")) // looks like base64, is a string
	m.Set(fields.ByName("at"), protoreflect.ValueOfMessage(timestamppb.New(timestamppb.Now().AsTime()).ProtoReflect()))
	free, _ := structpb.NewStruct(map[string]any{"payload": "AAEC"})
	m.Set(fields.ByName("free"), protoreflect.ValueOfMessage(free.ProtoReflect()))

	p := printer{json: true}
	for _, indent := range []string{"  ", ""} {
		plain, err := p.jsonOptions(indent).Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := hexBytesJSON(plain, md, indent)
		if err != nil {
			t.Fatal(err)
		}
		if indent == "" && bytes.Contains(got, []byte("\n")) {
			t.Errorf("compact output spans lines:\n%s", got)
		}
		var gotV, wantV any
		if err := json.Unmarshal(got, &gotV); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, got)
		}
		// The expectation: the plain protojson with exactly the bytes
		// fields changed.
		if err := json.Unmarshal(plain, &wantV); err != nil {
			t.Fatal(err)
		}
		w := wantV.(map[string]any)
		w["payload"] = "deadbeef"
		w["chunks"] = []any{"00", "fffe"}
		w["by_name"] = map[string]any{"k<&>": "0102"}
		w["inner"] = map[string]any{"blob": "ab", "note": "q83v"}
		w["inners"] = []any{map[string]any{"blob": "10", "note": "a"}, map[string]any{"blob": "", "note": "b"}}
		w["inner_by_name"] = map[string]any{"x": map[string]any{"blob": "2021", "note": ""}}
		w["wrapped"] = "7f"
		anyList := w["any"].([]any)
		fact := anyList[0].(map[string]any)
		fact["payload"], fact["signature"] = "cafe", "51"
		anyList[1].(map[string]any)["value"] = "99"
		if !jsonEqual(gotV, wantV) {
			t.Errorf("indent %q:\ngot  %s\nwant %s", indent, got, mustJSON(wantV))
		}
		// Order is protojson's: the field numbers'.
		if i, j := bytes.Index(got, []byte(`"payload"`)), bytes.Index(got, []byte(`"chunks"`)); i < 0 || j < i {
			t.Errorf("field order changed:\n%s", got)
		}
		if bytes.Contains(got, []byte(`\u003c`)) {
			t.Errorf("map key HTML-escaped:\n%s", got)
		}
	}
}

// Without --hex, -o json is protojson as it always was: scripts decode bytes
// as base64.
func TestHexFlagAndDefaultJSON(t *testing.T) {
	d := startDaemon(t)
	d.journal.facts = testFacts()
	id := strings.Repeat("2", 64)
	var resp journalv1.GetFactResponse
	for _, f := range d.journal.facts {
		if f.Id == id {
			resp.Fact = f
		}
	}
	plain, err := printer{json: true}.jsonOptions("  ").Marshal(&resp)
	if err != nil {
		t.Fatal(err)
	}
	r := d.run(t, "", "-o", "json", "fact", "get", id)
	mustOK(t, r)
	if r.out != string(plain)+"\n" {
		t.Errorf("default json changed:\n%s\nwant\n%s", r.out, plain)
	}
	if !strings.Contains(r.out, `"AP8="`) {
		t.Errorf("payload is not base64 by default:\n%s", r.out)
	}

	r = d.run(t, "", "-o", "json", "--hex", "fact", "get", id)
	mustOK(t, r)
	var got map[string]map[string]any
	if err := json.Unmarshal([]byte(r.out), &got); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	if got["fact"]["payload"] != "00ff" || got["fact"]["id"] != id || got["fact"]["lamport"] != "2" {
		t.Errorf("--hex fact: %v", got["fact"])
	}
	if !strings.HasPrefix(r.out, "{\n  \"fact\": {\n    \"id\": ") {
		t.Errorf("--hex output is not indented like protojson:\n%s", r.out)
	}

	// Streams stay one object per line.
	r = d.run(t, "", "-o", "json", "--hex", "fact", "watch")
	mustOK(t, r)
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	if len(lines) != len(d.journal.facts) || !strings.Contains(lines[1], `"payload":"00ff"`) {
		t.Errorf("--hex watch:\n%s", r.out)
	}
	// Tables do not change.
	table := d.run(t, "", "fact", "get", id)
	hexTable := d.run(t, "", "--hex", "fact", "get", id)
	if table.out != hexTable.out || table.code != ExitOK {
		t.Errorf("--hex changed the table:\n%s\nvs\n%s", hexTable.out, table.out)
	}
}

func jsonEqual(a, b any) bool { return bytes.Equal(mustJSON(a), mustJSON(b)) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
