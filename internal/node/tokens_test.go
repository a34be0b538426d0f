package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/budgetrpc"
	"github.com/aura-p2p/aura/internal/rpc/ceremonyrpc"
	"github.com/aura-p2p/aura/internal/rpc/contextrpc"
	"github.com/aura-p2p/aura/internal/rpc/crdtrpc"
	"github.com/aura-p2p/aura/internal/rpc/journalrpc"
	"github.com/aura-p2p/aura/internal/rpc/noderpc"
	"github.com/aura-p2p/aura/internal/rpc/peerrpc"
	"github.com/aura-p2p/aura/internal/rpc/sessionrpc"
	"github.com/aura-p2p/aura/internal/rpc/syncrpc"
	"github.com/aura-p2p/aura/internal/rpc/treerpc"
	"github.com/aura-p2p/aura/internal/rpc/wotrpc"
)

const (
	tokLegacy = "0123456789abcdef-legacy"
	tokRead   = "read-token-0123456789abcdef"
	tokWrite  = "write-token-0123456789abcdef"
	tokAdmin  = "admin-token-0123456789abcdef"
)

// undecodable is a request no message decodes (a length running past the
// end), so a call that passes authorization stops at InvalidArgument before
// any handler acts on it: the walk below can call Shutdown with impunity.
var undecodableRequest = []byte{0x0a, 0x7f}

// Every method the daemon serves, called over TLS with every kind of token:
// a token is refused exactly on the methods that need more than its level,
// and the unix socket's owner is admin.
func TestEveryMethodChecksTheTokenLevel(t *testing.T) {
	cfg := testConfig(t)
	cert, key, pool := writeTLS(t, cfg.DataDir)
	tokenFile := filepath.Join(cfg.DataDir, "tokens")
	os.WriteFile(tokenFile, []byte(tokLegacy+"\n# levels\n"+tokRead+" read viewer\n"+tokWrite+" write writer\n"+tokAdmin+" admin ops\n"), 0o600)
	cfg.Control = ControlConfig{TCPListen: "127.0.0.1:0", TLSCertFile: cert, TLSKeyFile: key, TokenFile: tokenFile}
	n := startNode(t, cfg)
	tcp, err := grpc.NewClient(n.TCPAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	unix := dial(t, cfg.Socket)

	// The same tables node.Start merges: a method registered without an
	// entry here fails the walk.
	perms, err := rpc.Merge(rpc.StandardPermissions(), noderpc.Permissions(), journalrpc.Permissions(), crdtrpc.Permissions(),
		peerrpc.Permissions(), budgetrpc.Permissions(), sessionrpc.Permissions(), ceremonyrpc.Permissions(), contextrpc.Permissions(), wotrpc.Permissions(), syncrpc.Permissions(), treerpc.Permissions())
	if err != nil {
		t.Fatal(err)
	}
	callers := []struct {
		name, auth string
		conn       *grpc.ClientConn
		level      rpc.Permission // 0: holds no level
		label      string
	}{
		{"no token", "", tcp, 0, ""},
		{"wrong token", "Bearer " + strings.Repeat("x", 27), tcp, 0, ""},
		{"read", "Bearer " + tokRead, tcp, rpc.Read, "this token (viewer) is read"},
		{"write", "Bearer " + tokWrite, tcp, rpc.Write, "this token (writer) is write"},
		{"admin", "Bearer " + tokAdmin, tcp, rpc.Admin, ""},
		{"single-token format", "Bearer " + tokLegacy, tcp, rpc.Admin, ""},
		{"unix socket", "", unix, rpc.Admin, ""},
	}
	var methods []string
	info := map[string]grpc.MethodInfo{}
	for svc, si := range n.grpc.GetServiceInfo() {
		for _, m := range si.Methods {
			full := "/" + svc + "/" + m.Name
			methods = append(methods, full)
			info[full] = m
		}
	}
	sort.Strings(methods)
	if len(methods) < 20 {
		t.Fatalf("only %d methods registered: %v", len(methods), methods)
	}
	seen := map[rpc.Permission]bool{}
	for _, method := range methods {
		need, ok := perms[method]
		if !ok {
			t.Fatalf("%s has no permission entry", method)
		}
		seen[need] = true
		for _, c := range callers {
			t.Run(method+"/"+c.name, func(t *testing.T) {
				ctx := context.Background()
				if c.auth != "" {
					ctx = metadata.AppendToOutgoingContext(ctx, "authorization", c.auth)
				}
				err := callRaw(ctx, c.conn, method, info[method])
				st, _ := status.FromError(err)
				switch {
				case c.level == 0:
					if st.Code() != codes.Unauthenticated {
						t.Fatalf("got %v, want Unauthenticated", err)
					}
				case c.level < need:
					want := method + " needs " + need.String() + "; " + c.label
					if st.Code() != codes.PermissionDenied || st.Message() != want {
						t.Fatalf("got %v, want PermissionDenied %q", err, want)
					}
				default:
					// Authorized: the request reached the decoding check.
					if st.Code() != codes.InvalidArgument {
						t.Fatalf("got %v, want InvalidArgument from a call let through", err)
					}
				}
			})
		}
	}
	if !seen[rpc.Read] || !seen[rpc.Write] || !seen[rpc.Admin] {
		t.Fatalf("the walk did not meet every level: %v", seen)
	}
}

// callRaw sends undecodableRequest to method as the method's kind of call.
func callRaw(ctx context.Context, conn *grpc.ClientConn, method string, m grpc.MethodInfo) error {
	var out []byte
	codec := grpc.ForceCodec(rawCodec{})
	if !m.IsClientStream && !m.IsServerStream {
		return conn.Invoke(ctx, method, undecodableRequest, &out, codec)
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: m.IsServerStream, ClientStreams: m.IsClientStream}, method, codec)
	if err != nil {
		return err
	}
	// io.EOF from SendMsg means the server already ended the stream (a
	// bidirectional call refused before it reads): its status is what
	// RecvMsg returns.
	if err := s.SendMsg(undecodableRequest); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	return s.RecvMsg(&out)
}

// A read token does what read allows, end to end, and nothing more.
func TestReadTokenOverTLS(t *testing.T) {
	cfg := testConfig(t)
	cert, key, pool := writeTLS(t, cfg.DataDir)
	tokenFile := filepath.Join(cfg.DataDir, "tokens")
	tok, err := CreateToken(tokenFile, rpc.Read, "dashboard", bytes.NewReader(bytes.Repeat([]byte{7}, tokenBytes)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Control = ControlConfig{TCPListen: "127.0.0.1:0", TLSCertFile: cert, TLSKeyFile: key, TokenFile: tokenFile}
	n := startNode(t, cfg)
	conn, err := grpc.NewClient(n.TCPAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := nodev1.NewNodeServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok.Secret)
	if _, err := client.GetStatus(ctx, &nodev1.GetStatusRequest{}); err != nil {
		t.Fatalf("status with a read token: %v", err)
	}
	_, err = client.Shutdown(ctx, &nodev1.ShutdownRequest{})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "Shutdown needs admin; this token (dashboard) is read") {
		t.Fatalf("shutdown with a read token: %v", err)
	}
	select {
	case <-n.ShutdownRequested():
		t.Fatal("a refused Shutdown shut the daemon down")
	default:
	}
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, text string
		want       []rpc.Token
		err        string
	}{
		{"single-token format", "  " + tokLegacy + "\n\n", []rpc.Token{{Level: rpc.Admin, Secret: tokLegacy}}, ""},
		{"levels", "# comment\n" + tokRead + " read viewer\n\n" + tokWrite + "\twrite  writer\n" + tokLegacy + "\n",
			[]rpc.Token{{Name: "viewer", Level: rpc.Read, Secret: tokRead}, {Name: "writer", Level: rpc.Write, Secret: tokWrite}, {Level: rpc.Admin, Secret: tokLegacy}}, ""},
		{"unknown level", tokRead + " root ops\n", nil, `line 1: unknown level "root"`},
		{"no name", tokRead + " read\n", nil, "line 1 has 2 fields"},
		{"too many fields", tokRead + " read a b\n", nil, "line 1 has 4 fields"},
		{"short token", "#\nshort read x\n", nil, "line 2: token is shorter than 16 characters"},
		{"same token twice", tokRead + " read a\n" + tokRead + " admin b\n", nil, "lines 1 and 2 hold the same token"},
		{"same name twice", tokRead + " read a\n" + tokWrite + " write a\n", nil, `lines 1 and 2 both name a token "a"`},
		{"bad name", tokRead + " read a/b\n", nil, `name "a/b" is not`},
		{"empty", "# nothing yet\n", nil, "holds no token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			os.WriteFile(path, []byte(tc.text), 0o600)
			got, err := ReadTokenFile(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, core.ErrInvalidArgument) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				for _, s := range []string{tokRead, tokWrite} {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("error repeats a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("token %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte(tokLegacy), 0o644)
	if _, err := ReadTokenFile(open); !errors.Is(err, core.ErrFailedPrecondition) {
		t.Fatalf("group-readable token file: %v", err)
	}
}

func TestCreateToken(t *testing.T) {
	dir := t.TempDir()
	random := func(b byte) *bytes.Reader { return bytes.NewReader(bytes.Repeat([]byte{b}, tokenBytes)) }

	// A new file: mode 0600, a header explaining the format, the token.
	path := filepath.Join(dir, "tokens")
	tok, err := CreateToken(path, rpc.Read, "ci", random(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, tokenBytes)); tok.Secret != want || tok.Name != "ci" || tok.Level != rpc.Read {
		t.Fatalf("got %+v", tok)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi, err)
	}
	if got, err := ReadTokenFile(path); err != nil || len(got) != 1 || got[0] != tok {
		t.Fatalf("read back: %+v %v", got, err)
	}

	// A file in the single-token format keeps its line and gains one.
	legacy := filepath.Join(dir, "legacy")
	os.WriteFile(legacy, []byte(tokLegacy), 0o600)
	tok, err = CreateToken(legacy, rpc.Write, "", random(2))
	if err != nil || tok.Name != "write-2" {
		t.Fatalf("got %+v %v", tok, err)
	}
	b, _ := os.ReadFile(legacy)
	if want := tokLegacy + "\n" + tok.Secret + " write write-2\n"; string(b) != want {
		t.Fatalf("file is %q, want %q", b, want)
	}

	// Through a symlink, the file it points to is rewritten.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(legacy, link); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateToken(link, rpc.Admin, "ops", random(3)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the symlink was replaced")
	}
	if got, err := ReadTokenFile(legacy); err != nil || len(got) != 3 || got[2].Name != "ops" || got[2].Level != rpc.Admin {
		t.Fatalf("read back: %+v %v", got, err)
	}

	// Refusals leave the file as it was.
	broken := filepath.Join(dir, "broken")
	os.WriteFile(broken, []byte(tokRead+" superuser x\n"), 0o600)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte(tokLegacy+"\n"), 0o644)
	refusals := []struct {
		name, path, tokenName string
		random                *bytes.Reader
		err                   error
		msg                   string
	}{
		{"name taken", legacy, "ops", random(4), core.ErrAlreadyExists, `already has a token named "ops"`},
		{"bad name", legacy, "two words", random(4), core.ErrInvalidArgument, `token name "two words"`},
		{"file does not parse", broken, "", random(4), core.ErrInvalidArgument, "fix the file before adding a token"},
		{"file readable by others", open, "", random(4), core.ErrFailedPrecondition, "mode 0644"},
		{"randomness fails", legacy, "", bytes.NewReader(nil), nil, "token randomness"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(tc.path)
			_, err := CreateToken(tc.path, rpc.Read, tc.tokenName, tc.random)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Fatalf("got %v, want %v containing %q", err, tc.err, tc.msg)
			}
			if after, _ := os.ReadFile(tc.path); !bytes.Equal(before, after) {
				t.Fatalf("file changed from %q to %q", before, after)
			}
		})
	}
	if _, err := CreateToken(filepath.Join(dir, "missing", "tokens"), rpc.Read, "", random(5)); err == nil {
		t.Fatal("created a token file in a missing directory")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}
}
