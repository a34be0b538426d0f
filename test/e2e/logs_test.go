package e2e

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aura-p2p/aura/test/cluster"
)

// At debug level, after invitations, a ceremony and capability tokens, no
// secret is in either daemon's log: not the invitation code or its secret,
// not a token, not the device or HPKE key.
func TestLogsCarryNoSecrets(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		for _, n := range c.Nodes() {
			if out := n.MustCtl("log-level", "debug"); !strings.Contains(out, "debug (was info)") {
				t.Fatalf("log-level debug: %q", out)
			}
			if out := strings.TrimSpace(n.MustCtl("log-level")); out != "debug" {
				t.Fatalf("log-level reads %q", out)
			}
		}
		if out, code := a.Ctl("log-level", "verbose"); code != 2 {
			t.Fatalf("log-level verbose: exit %d: %s", code, out)
		}
		code, _ := invite(t, a, "--message", "see you")
		var secrets []string
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(code, "aura-invite1-"))
		if err != nil || len(raw) < 145 {
			t.Fatalf("code %q: %v", code, err)
		}
		secret := raw[1+16+32+32+32 : 1+16+32+32+32+32]
		secrets = append(secrets, code, strings.TrimPrefix(code, "aura-invite1-"), hex.EncodeToString(secret),
			base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret))
		b.MustCtl("accept", code, "--nickname", "a")
		// A replay and a forgery make the daemons log refusals too.
		b.Ctl("accept", code)
		b.Ctl("accept", code[:len(code)-4]+"AAAA")

		var tok struct {
			Text string `json:"text"`
		}
		a.CtlJSON(&tok, "cap", "issue", "--holder", b.DeviceID(), "--cap", "chat:send")
		b.MustCtl("cap", "verify", tok.Text)
		secrets = append(secrets, tok.Text)
		a.MustCtl("fact", "append", "--type", "app.note/v1", "--payload", "hello")

		for _, n := range c.Nodes() {
			for _, f := range []string{"device.key", "hpke.key"} {
				b, err := os.ReadFile(filepath.Join(n.Dir(), f))
				if err != nil {
					t.Fatal(err)
				}
				blk, _ := pem.Decode(b)
				if blk == nil {
					t.Fatalf("%s is not PEM", f)
				}
				secrets = append(secrets, base64.StdEncoding.EncodeToString(blk.Bytes)[:40], hex.EncodeToString(blk.Bytes[len(blk.Bytes)-32:]))
			}
		}
		for _, n := range c.Nodes() {
			log := n.Log()
			if !strings.Contains(log, "DEBUG") {
				t.Fatalf("node %d logged nothing at debug level", n.Index())
			}
			for _, s := range secrets {
				if strings.Contains(log, s) {
					t.Errorf("node %d's log holds a secret (%.12s...)", n.Index(), s)
				}
			}
		}
	})
}
