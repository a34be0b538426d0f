package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	crdtv1 "github.com/aura-p2p/aura/api/proto/aura/crdt/v1"
	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
)

// testConfig returns a config in a short temp dir: unix socket paths must stay
// under ~100 bytes, which t.TempDir() does not guarantee.
func testConfig(t *testing.T) Config {
	t.Helper()
	dir, err := os.MkdirTemp("", "aura")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Socket = filepath.Join(dir, "aurad.sock")
	return cfg
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Start(context.Background(), cfg, Deps{Logger: zaptest.NewLogger(t), Notify: func(string) {}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(n.Stop)
	return n
}

func dial(t *testing.T, sock string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestNodeServesAndKeepsIdentityAcrossRestarts(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	n := startNode(t, cfg)
	conn := dial(t, cfg.Socket)
	st, err := nodev1.NewNodeServiceClient(conn).GetStatus(ctx, &nodev1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetJournal().GetFactCount() != 1 || st.GetDeviceId() == "" || st.GetAuthorityId() == "" || !strings.HasPrefix(st.GetPeerId(), "12D3KooW") {
		t.Fatalf("status %v", st)
	}
	if fi, err := os.Stat(cfg.Socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	for _, f := range []string{deviceKeyFile, hpkeKeyFile} {
		if fi, err := os.Stat(filepath.Join(cfg.DataDir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode: %v %v", f, fi.Mode(), err)
		}
	}
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health %v %v", hc, err)
	}
	app, err := journalv1.NewJournalServiceClient(conn).AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.note/v1", Payload: []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	n.Stop()

	startNode(t, cfg)
	conn = dial(t, cfg.Socket)
	again, err := nodev1.NewNodeServiceClient(conn).GetStatus(ctx, &nodev1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if again.GetDeviceId() != st.GetDeviceId() || again.GetAuthorityId() != st.GetAuthorityId() || again.GetJournal().GetFactCount() != 2 {
		t.Fatalf("identity or facts changed across restart: %v vs %v", again, st)
	}
	got, err := journalv1.NewJournalServiceClient(conn).GetFact(ctx, &journalv1.GetFactRequest{Id: app.GetId()})
	if err != nil || string(got.GetFact().GetPayload()) != "hi" {
		t.Fatalf("fact after restart: %v %v", got, err)
	}
}

func TestSecondNodeOnSameDataDirRefuses(t *testing.T) {
	cfg := testConfig(t)
	startNode(t, cfg)
	_, err := Start(context.Background(), cfg, Deps{Notify: func(string) {}})
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("got %v", err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	cfg := testConfig(t)
	l, err := net.Listen("unix", cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	// Leave the file behind, as a crashed daemon would.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	startNode(t, cfg)
	if _, err := nodev1.NewNodeServiceClient(dial(t, cfg.Socket)).GetStatus(context.Background(), &nodev1.GetStatusRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFileReadableByOthersIsRefused(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	n.Stop()
	os.Chmod(filepath.Join(cfg.DataDir, deviceKeyFile), 0o644)
	_, err := Start(context.Background(), cfg, Deps{Notify: func(string) {}})
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("got %v", err)
	}
}

func TestBadInputGetsClearCodesAndStoresNothing(t *testing.T) {
	cfg := testConfig(t)
	startNode(t, cfg)
	ctx := context.Background()
	conn := dial(t, cfg.Socket)
	j := journalv1.NewJournalServiceClient(conn)
	c := crdtv1.NewCrdtServiceClient(conn)
	if _, err := c.Update(ctx, &crdtv1.UpdateRequest{Name: "n", Op: &crdtv1.UpdateRequest_CounterAdd{CounterAdd: &crdtv1.CounterAdd{Delta: 1}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"oversized payload", func() error {
			_, err := j.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.x/v1", Payload: make([]byte, 64<<10+1)})
			return err
		}, codes.InvalidArgument},
		{"malformed type", func() error {
			_, err := j.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "App X"})
			return err
		}, codes.InvalidArgument},
		{"reserved type", func() error {
			_, err := j.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "aura.namespace.genesis/v1"})
			return err
		}, codes.InvalidArgument},
		{"unknown namespace", func() error {
			_, err := j.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.x/v1", Namespace: "context/" + strings.Repeat("ab", 32)})
			return err
		}, codes.NotFound},
		{"garbage namespace", func() error {
			_, err := j.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.x/v1", Namespace: "group/1"})
			return err
		}, codes.InvalidArgument},
		{"bad page token", func() error {
			_, err := j.ListFacts(ctx, &journalv1.ListFactsRequest{PageToken: "not-a-token"})
			return err
		}, codes.InvalidArgument},
		{"unknown fact", func() error {
			_, err := j.GetFact(ctx, &journalv1.GetFactRequest{Id: strings.Repeat("0", 64)})
			return err
		}, codes.NotFound},
		{"wrong kind", func() error {
			_, err := c.Update(ctx, &crdtv1.UpdateRequest{Name: "n", Op: &crdtv1.UpdateRequest_SetAdd{SetAdd: &crdtv1.SetAdd{Element: "x"}}})
			return err
		}, codes.FailedPrecondition},
		{"no operation", func() error {
			_, err := c.Update(ctx, &crdtv1.UpdateRequest{Name: "n"})
			return err
		}, codes.InvalidArgument},
		{"control character in name", func() error {
			_, err := c.Get(ctx, &crdtv1.GetRequest{Name: "a\x00b"})
			return err
		}, codes.InvalidArgument},
		{"missing object", func() error {
			_, err := c.Get(ctx, &crdtv1.GetRequest{Name: "absent"})
			return err
		}, codes.NotFound},
	}
	// The count is read before and after; a status call that fails or counts
	// nothing would let any stored fact go unseen.
	before, err := nodev1.NewNodeServiceClient(conn).GetStatus(ctx, &nodev1.GetStatusRequest{})
	if err != nil {
		t.Fatalf("status before: %v", err)
	}
	if before.GetJournal().GetFactCount() == 0 {
		t.Fatalf("status before counts no facts after a counter update: %v", before)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := status.Code(tc.call()); got != tc.code {
				t.Fatalf("code %v, want %v", got, tc.code)
			}
		})
	}
	after, err := nodev1.NewNodeServiceClient(conn).GetStatus(ctx, &nodev1.GetStatusRequest{})
	if err != nil {
		t.Fatalf("status after: %v", err)
	}
	if after.GetJournal().GetFactCount() != before.GetJournal().GetFactCount() {
		t.Fatalf("rejected requests stored facts: %d -> %d", before.GetJournal().GetFactCount(), after.GetJournal().GetFactCount())
	}
}

func TestShutdownRPCAndDrainEndWatches(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	ctx := context.Background()
	conn := dial(t, cfg.Socket)
	stream, err := journalv1.NewJournalServiceClient(conn).WatchFacts(ctx, &journalv1.WatchFactsRequest{FromNow: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var watchErr error
	go func() {
		defer wg.Done()
		_, watchErr = stream.Recv()
	}()
	if _, err := nodev1.NewNodeServiceClient(conn).Shutdown(ctx, &nodev1.ShutdownRequest{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.ShutdownRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown not requested")
	}
	n.Stop()
	wg.Wait()
	if c := status.Code(watchErr); c != codes.Unavailable {
		t.Fatalf("watch ended with %v", watchErr)
	}
	if _, err := os.Stat(cfg.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
}

// writeTLS makes a self-signed certificate for 127.0.0.1.
func writeTLS(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aurad"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTCPControlNeedsTLSAndToken(t *testing.T) {
	cfg := testConfig(t)
	cert, key, pool := writeTLS(t, cfg.DataDir)
	tokenFile := filepath.Join(cfg.DataDir, "token")
	os.WriteFile(tokenFile, []byte("0123456789abcdef-secret\n"), 0o600)
	cfg.Control = ControlConfig{TCPListen: "127.0.0.1:0", TLSCertFile: cert, TLSKeyFile: key, TokenFile: tokenFile}
	n := startNode(t, cfg)
	conn, err := grpc.NewClient(n.TCPAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := nodev1.NewNodeServiceClient(conn)
	ctx := context.Background()
	if _, err := client.GetStatus(ctx, &nodev1.GetStatusRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	bad := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer wrong")
	if _, err := client.GetStatus(bad, &nodev1.GetStatusRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong token: %v", err)
	}
	good := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer 0123456789abcdef-secret")
	if _, err := client.GetStatus(good, &nodev1.GetStatusRequest{}); err != nil {
		t.Fatalf("good token: %v", err)
	}
	plain, _ := grpc.NewClient(n.TCPAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer plain.Close()
	if _, err := nodev1.NewNodeServiceClient(plain).GetStatus(good, &nodev1.GetStatusRequest{}); err == nil {
		t.Fatal("plaintext TCP accepted")
	}
}

// rawCodec sends bytes as they are, to play a client whose encoder is broken.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *(v.(*[]byte)) = data; return nil }
func (rawCodec) Name() string                       { return "proto" }

func TestUndecodableRequestsAreInvalidArgument(t *testing.T) {
	cfg := testConfig(t)
	startNode(t, cfg)
	conn, err := grpc.NewClient("unix://"+cfg.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	badName := []byte{0x12, 0x02, 0xff, 0xfe} // GetRequest.name = invalid UTF-8
	var out []byte
	err = conn.Invoke(ctx, crdtv1.CrdtService_Get_FullMethodName, badName, &out)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("unary: %v", err)
	}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, crdtv1.CrdtService_Watch_FullMethodName)
	if err != nil {
		t.Fatal(err)
	}
	stream.SendMsg(badName)
	stream.CloseSend()
	if err := stream.RecvMsg(&out); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("stream: %v", err)
	}
}

func TestNotifiesReadyOnlyWhenSocketAcceptsAndStoppingOnStop(t *testing.T) {
	cfg := testConfig(t)
	var mu sync.Mutex
	var states []string
	notify := func(s string) {
		// READY must mean a client can connect right now.
		if s == "READY=1" {
			if c, err := net.Dial("unix", cfg.Socket); err != nil {
				t.Errorf("READY sent before the socket accepts: %v", err)
			} else {
				c.Close()
			}
		}
		mu.Lock()
		states = append(states, s)
		mu.Unlock()
	}
	n, err := Start(context.Background(), cfg, Deps{Logger: zaptest.NewLogger(t), Notify: notify})
	if err != nil {
		t.Fatal(err)
	}
	n.Stop()
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(states, ",") != "READY=1,STOPPING=1" {
		t.Fatalf("notified %v", states)
	}
}
