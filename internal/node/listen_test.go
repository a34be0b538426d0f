package node

import (
	"net"
	"strings"
	"testing"
)

func TestStickyListenShapes(t *testing.T) {
	for _, tc := range []struct {
		addr, shape string
		zero        bool
	}{
		{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/*", true},
		{"/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/udp/*/quic-v1", true},
		{"/ip4/127.0.0.1/tcp/4001", "", false},
		{"/ip6/::1/tcp/0", "/ip6/::1/tcp/*", true},
	} {
		shape, ok := zeroPortShape(tc.addr)
		if ok != tc.zero || shape != tc.shape {
			t.Errorf("zeroPortShape(%q) = %q, %v", tc.addr, shape, ok)
		}
	}
	if s, ok := portShape("/ip4/127.0.0.1/udp/40123/quic-v1"); !ok || s != "/ip4/127.0.0.1/udp/*/quic-v1" {
		t.Errorf("portShape: %q %v", s, ok)
	}
}

// A restarted node listens where it did before, so what peers learned of it
// stays good; a port taken meanwhile is replaced by a new one.
func TestRestartKeepsListenPorts(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	first := n.transport.Addrs()
	n.Stop()
	n2 := startNode(t, cfg)
	again := n2.transport.Addrs()
	if strings.Join(first, ",") != strings.Join(again, ",") {
		t.Fatalf("listen addresses moved across a restart:\n%v\n%v", first, again)
	}
	// Occupy the node's TCP port while it is down.
	n2.Stop()
	var tcp string
	for _, a := range again {
		if strings.Contains(a, "/tcp/") {
			tcp = a
		}
	}
	port := strings.Split(strings.Split(tcp, "/tcp/")[1], "/")[0]
	l, err := listenTCP("127.0.0.1:" + port)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n3 := startNode(t, cfg)
	for _, a := range n3.transport.Addrs() {
		if strings.Contains(a, "/tcp/"+port+"/") {
			t.Fatalf("started on a port someone else holds: %v", a)
		}
	}
}

func listenTCP(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
