package rpc

import (
	"context"
	"net"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Every caller level against every level a method may need, plus the callers
// that hold no level at all.
func TestAuthorizeEnforcesLevels(t *testing.T) {
	tokens := []Token{
		{Name: "viewer", Level: Read, Secret: "read-secret-0123456789"},
		{Name: "writer", Level: Write, Secret: "write-secret-0123456789"},
		{Name: "", Level: Admin, Secret: "admin-secret-0123456789"},
	}
	perms := Permissions{"/s/R": Read, "/s/W": Write, "/s/A": Admin}
	c := &chain{o: Options{Logger: zaptest.NewLogger(t), Permissions: perms, Tokens: tokens}}
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	unix := &net.UnixAddr{Name: "@", Net: "unix"}
	call := func(addr net.Addr, auth ...string) context.Context {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: addr})
		if len(auth) > 0 {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", auth[0]))
		}
		return ctx
	}
	cases := []struct {
		name   string
		ctx    context.Context
		method string
		code   codes.Code
		msg    string
	}{
		{"read on read", call(tcp, "Bearer read-secret-0123456789"), "/s/R", codes.OK, ""},
		{"read on write", call(tcp, "Bearer read-secret-0123456789"), "/s/W", codes.PermissionDenied, "/s/W needs write; this token (viewer) is read"},
		{"read on admin", call(tcp, "Bearer read-secret-0123456789"), "/s/A", codes.PermissionDenied, "/s/A needs admin; this token (viewer) is read"},
		{"write on read", call(tcp, "Bearer write-secret-0123456789"), "/s/R", codes.OK, ""},
		{"write on write", call(tcp, "Bearer write-secret-0123456789"), "/s/W", codes.OK, ""},
		{"write on admin", call(tcp, "Bearer write-secret-0123456789"), "/s/A", codes.PermissionDenied, "/s/A needs admin; this token (writer) is write"},
		{"admin on read", call(tcp, "Bearer admin-secret-0123456789"), "/s/R", codes.OK, ""},
		{"admin on write", call(tcp, "Bearer admin-secret-0123456789"), "/s/W", codes.OK, ""},
		{"admin on admin", call(tcp, "Bearer admin-secret-0123456789"), "/s/A", codes.OK, ""},
		{"unix socket is admin", call(unix), "/s/A", codes.OK, ""},
		{"no token", call(tcp), "/s/R", codes.Unauthenticated, "missing or wrong bearer token"},
		{"unknown token", call(tcp, "Bearer read-secret-012345678"), "/s/R", codes.Unauthenticated, "missing or wrong bearer token"},
		{"token without Bearer", call(tcp, "admin-secret-0123456789"), "/s/R", codes.Unauthenticated, "missing or wrong bearer token"},
		{"unlisted method", call(unix), "/s/X", codes.PermissionDenied, "method /s/X is not exposed"},
		{"no peer", context.Background(), "/s/R", codes.Unauthenticated, "no peer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.authorize(tc.ctx, tc.method)
			st, _ := status.FromError(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.code, tc.msg)
			}
			for _, tok := range tokens {
				if strings.Contains(st.Message(), tok.Secret) {
					t.Fatalf("refusal repeats a secret: %v", err)
				}
			}
		})
	}
}

func TestTCPWithoutTokensIsRefused(t *testing.T) {
	c := &chain{o: Options{Permissions: Permissions{"/s/R": Read}}}
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{}})
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "))
	if err := c.authorize(ctx, "/s/R"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("got %v", err)
	}
}

func TestParsePermission(t *testing.T) {
	for _, p := range []Permission{Read, Write, Admin} {
		got, err := ParsePermission(p.String())
		if err != nil || got != p {
			t.Fatalf("%s: %v %v", p, got, err)
		}
	}
	for _, s := range []string{"", "Read", "root", "permission(4)"} {
		if _, err := ParsePermission(s); err == nil {
			t.Fatalf("%q parsed", s)
		}
	}
	if !(Read < Write && Write < Admin) {
		t.Fatal("levels out of order")
	}
}

func TestMatchTokenComparesWholeSecrets(t *testing.T) {
	tokens := []Token{{Name: "a", Level: Read, Secret: "aaaaaaaaaaaaaaaa"}, {Name: "b", Level: Write, Secret: "bbbbbbbbbbbbbbbb"}}
	for presented, want := range map[string]string{
		"aaaaaaaaaaaaaaaa":  "a",
		"bbbbbbbbbbbbbbbb":  "b",
		"aaaaaaaaaaaaaaa":   "",
		"aaaaaaaaaaaaaaaaa": "",
		"":                  "",
	} {
		tok, ok := matchToken(tokens, presented)
		if ok != (want != "") || tok.Name != want {
			t.Fatalf("%q: got %q %v, want %q", presented, tok.Name, ok, want)
		}
	}
}

func TestCheckPermissionsRefusesAMethodWithoutALevel(t *testing.T) {
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	perms := Permissions{
		"/grpc.health.v1.Health/Check": Read,
		"/grpc.health.v1.Health/List":  Read,
		"/grpc.health.v1.Health/Watch": 0,
	}
	if err := CheckPermissions(srv, perms); err == nil || !strings.Contains(err.Error(), "Watch needs permission(0), which is no level") {
		t.Fatalf("got %v", err)
	}
	perms["/grpc.health.v1.Health/Watch"] = Read
	if err := CheckPermissions(srv, perms); err != nil {
		t.Fatal(err)
	}
}
