package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const pingPong = `#[namespace = "simple_ping_pong"]
protocol PingPong {
    roles: Alice, Bob;
    Alice -> Bob: Ping;
    Bob -> Alice: Pong;
}
`

const twoProtocols = pingPong + `
protocol Vote {
    roles: Alice, Bob, Carol;
    choice at Alice {
        Alice -> Bob: Yes;
        Bob[flow_cost = 2] -> Carol: Passed;
    } or {
        Alice -> Bob: No;
        Bob -> Carol: Failed;
    }
}
`

func writeChoreo(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "p.choreo")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runNoDaemon runs auractl pointed at a socket where nothing listens: the
// choreo commands must not need it.
func runNoDaemon(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "aurad.sock")
	return runCtl(t, nil, strings.NewReader(stdin), append([]string{"--socket", sock}, args...)...)
}

func TestChoreoCheck(t *testing.T) {
	file := writeChoreo(t, twoProtocols)
	r := runNoDaemon(t, "", "choreo", "check", file)
	if r.code != ExitOK || r.err != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	want := "ok: protocol PingPong, roles Alice, Bob\nok: protocol Vote, roles Alice, Bob, Carol\n"
	if r.out != want {
		t.Errorf("stdout %q, want %q", r.out, want)
	}

	r = runNoDaemon(t, pingPong, "choreo", "check", "-")
	if r.code != ExitOK || r.out != "ok: protocol PingPong, roles Alice, Bob\n" {
		t.Errorf("stdin: exit %d, out %q, err %q", r.code, r.out, r.err)
	}

	r = runNoDaemon(t, "", "-o", "json", "choreo", "check", file)
	var got checkOutput
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || r.code != ExitOK {
		t.Fatalf("json: exit %d, %v: %q", r.code, err, r.out)
	}
	if len(got.Protocols) != 2 || got.Protocols[0].Attributes["namespace"] != "simple_ping_pong" ||
		strings.Join(got.Protocols[1].Roles, ",") != "Alice,Bob,Carol" || got.File != file {
		t.Errorf("json %+v", got)
	}
}

func TestChoreoInvalid(t *testing.T) {
	for _, tt := range []struct {
		name, src, want string
	}{
		{"syntax", "protocol P {\n    roles: A, B;\n    A -> B: Ping\n}\n", ":4:1: expected ';' after message, found '}'"},
		{"ill-formed", "protocol P { roles: A, B; A -> C: X; }", ":1:32: role C is not declared in protocol P"},
		{"not realizable", "protocol P { roles: A, B, C;\n choice at A { A -> B: X; B -> C: Y; } or { A -> B: Z; } }", ":2:2: role C cannot tell which branch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := writeChoreo(t, tt.src)
			for _, args := range [][]string{
				{"choreo", "check", file},
				{"choreo", "project", file},
				{"-o", "json", "choreo", "check", file},
			} {
				r := runNoDaemon(t, "", args...)
				if r.code != ExitInvalidArgument {
					t.Errorf("%v: exit %d, want %d", args, r.code, ExitInvalidArgument)
				}
				prefix := "Error: invalid argument: " + file + tt.want
				if !strings.HasPrefix(r.err, prefix) || strings.Count(r.err, "\n") != 1 {
					t.Errorf("%v: stderr %q, want one line starting %q", args, r.err, prefix)
				}
				if r.out != "" {
					t.Errorf("%v: stdout %q", args, r.out)
				}
			}
		})
	}
}

func TestChoreoMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.choreo")
	for _, cmd := range []string{"check", "project"} {
		r := runNoDaemon(t, "", "choreo", cmd, missing)
		if r.code != ExitNotFound || !strings.HasPrefix(r.err, "Error: not found: open "+missing) {
			t.Errorf("%s: exit %d, stderr %q", cmd, r.code, r.err)
		}
	}
}

func TestChoreoProject(t *testing.T) {
	file := writeChoreo(t, twoProtocols)
	r := runNoDaemon(t, "", "choreo", "project", file, "--protocol", "PingPong")
	want := `protocol PingPong
Alice:
  Send(Bob, Ping);
  Recv(Bob, Pong);
  end
Bob:
  Recv(Alice, Ping);
  Send(Alice, Pong);
  end
`
	if r.code != ExitOK || r.out != want {
		t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", r.code, r.err, r.out, want)
	}

	// --role across the file: only protocols that have the role.
	r = runNoDaemon(t, "", "choreo", "project", file, "--role", "Carol")
	want = `protocol Vote
Carol:
  branch Bob {
    Passed:
      Recv(Bob, Passed) [flow_cost = 2];
      end
    Failed:
      Recv(Bob, Failed);
      end
  }
`
	if r.code != ExitOK || r.out != want {
		t.Errorf("--role: exit %d, stderr %q, stdout\n%s\nwant\n%s", r.code, r.err, r.out, want)
	}

	r = runNoDaemon(t, "", "-o", "json", "choreo", "project", file, "--role", "Alice")
	var got projectOutput
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || r.code != ExitOK {
		t.Fatalf("json: exit %d, %v: %q", r.code, err, r.out)
	}
	if len(got.Protocols) != 2 || got.Protocols[0].Roles[0].LocalType != "Send(Bob, Ping); Recv(Bob, Pong); end" {
		t.Fatalf("json %+v", got)
	}
	alice := got.Protocols[1].Roles[0].Local
	if alice.Kind != "select" || len(alice.Arms) != 2 || alice.Arms[0].Label != "Yes" ||
		alice.Arms[0].Next.Kind != "send" || alice.Arms[0].Next.Peer != "Bob" || alice.Arms[0].Next.Next.Kind != "end" {
		t.Errorf("json local %+v", alice)
	}
	// Only Alice's views: she never meets Carol nor the annotated message.
	if strings.Contains(r.out, "Carol") || strings.Contains(r.out, "flow_cost") {
		t.Errorf("json shows more than Alice's views: %s", r.out)
	}
}

func TestChoreoProjectNotFound(t *testing.T) {
	file := writeChoreo(t, twoProtocols)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "Dave"}, "Error: not found: " + file + ": no protocol has role Dave\n"},
		{[]string{"--protocol", "Nope"}, "Error: not found: " + file + ": no protocol Nope\n"},
		{[]string{"--protocol", "PingPong", "--role", "Carol"}, "Error: not found: " + file + ": no protocol PingPong with role Carol\n"},
	} {
		r := runNoDaemon(t, "", append([]string{"choreo", "project", file}, tt.args...)...)
		if r.code != ExitNotFound || r.err != tt.want || r.out != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q", tt.args, r.code, r.err, r.out)
		}
	}
}

func TestChoreoUsage(t *testing.T) {
	for _, args := range [][]string{
		{"choreo", "check"},
		{"choreo", "project", "a", "b"},
		{"choreo", "bogus"},
		{"choreo", "project", "x", "--bogus"},
	} {
		r := runNoDaemon(t, "", args...)
		if r.code != ExitUsage || !strings.HasPrefix(r.err, "Error: ") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.err)
		}
	}
	r := runNoDaemon(t, "", "choreo")
	if r.code != ExitOK || !strings.Contains(r.out, "project") {
		t.Errorf("bare noun: exit %d, out %q", r.code, r.out)
	}
}
