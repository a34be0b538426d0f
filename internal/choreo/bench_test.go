package choreo

import (
	"fmt"
	"strings"
	"testing"
)

// fiftyMessages is a four-role protocol of 50 annotated messages with a
// choice and a loop, about the size of the largest ceremony.
func fiftyMessages() []byte {
	roles := []string{"Coordinator", "W1", "W2", "W3"}
	var b strings.Builder
	b.WriteString("protocol Fifty {\n    roles: Coordinator, W1, W2, W3;\n")
	n := 0
	msg := func(from, to string) {
		fmt.Fprintf(&b, "    %s[guard_capability = \"cap%d\", flow_cost = %d, journal_facts = \"fact%d\"] -> %s: M%d(Payload%d);\n", from, n, n, n, to, n, n)
		n++
	}
	for i := 0; i < 30; i++ {
		msg(roles[i%4], roles[(i+1)%4])
	}
	b.WriteString("    rec Round {\n")
	for i := 0; i < 6; i++ {
		msg("Coordinator", roles[1+i%3])
		msg(roles[1+i%3], "Coordinator")
	}
	b.WriteString("    choice at Coordinator {\n        Again: {\n")
	for _, w := range roles[1:] {
		fmt.Fprintf(&b, "            Coordinator -> %s: Again;\n", w)
	}
	b.WriteString("            continue Round;\n        }\n        or Stop: {\n")
	for _, w := range roles[1:] {
		fmt.Fprintf(&b, "            Coordinator -> %s: Stop;\n", w)
	}
	b.WriteString("        }\n    }\n    }\n")
	for n < 50-6 {
		msg(roles[n%4], roles[(n+2)%4])
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

func TestFiftyMessagesLoads(t *testing.T) {
	src := fiftyMessages()
	if got := strings.Count(string(src), "->"); got != 50 {
		t.Fatalf("%d messages, want 50", got)
	}
	if _, _, err := Load(src); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkParseProject50: parse, check and project a 50-message protocol
// onto all four roles. Goal: at most 1 ms.
func BenchmarkParseProject50(b *testing.B) {
	src := fiftyMessages()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Load(src); err != nil {
			b.Fatal(err)
		}
	}
}
