package cluster

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aura-p2p/aura/internal/node"
	"github.com/aura-p2p/aura/internal/transport"
)

// Runner says where a cluster's daemons run.
type Runner string

const (
	// InProcess nodes run in the test process (under -race with the test),
	// on an in-memory libp2p network with partition and latency controls.
	InProcess Runner = "inprocess"
	// Processes are real aurad processes on loopback TCP and QUIC, each in
	// its own data dir, that can be killed with SIGKILL.
	Processes Runner = "processes"
)

// Runners are both runners, in the order Run uses them.
var Runners = []Runner{InProcess, Processes}

// Feature is something only one runner offers; a scenario that needs it is
// skipped, with the reason, on the other.
type Feature string

const (
	// NetworkControl is Partition, Heal and SetLatency (in-process only: the
	// processes talk over real sockets the harness does not own).
	NetworkControl Feature = "network control"
	// Crash is Kill as a real kill -9 (processes only: an in-process node
	// cannot lose its process without taking the test with it).
	Crash Feature = "kill -9"
	// Hostile is Transport: sending, as a node, messages its daemon would
	// never send.
	Hostile Feature = "hostile sends"
)

// Scenario is a multi-node test body, written once for both runners.
type Scenario func(t *testing.T, c *Cluster)

// Run runs scenario on a fresh cluster of n nodes on each runner, as the
// subtests "inprocess" and "processes". A runner without one of the features
// the scenario needs skips it before starting anything.
func Run(t *testing.T, n int, scenario Scenario, needs ...Feature) {
	for _, r := range Runners {
		t.Run(string(r), func(t *testing.T) {
			for _, f := range needs {
				if !r.has(f) {
					t.Skipf("the %s runner has no %s", r, f)
				}
			}
			scenario(t, New(t, r, n))
		})
	}
}

func (r Runner) has(f Feature) bool {
	have := map[Runner][]Feature{InProcess: {NetworkControl, Hostile}, Processes: {Crash, Hostile}}
	return slices.Contains(have[r], f)
}

// Cluster is a set of daemons, each in its own data dir, started and ready.
type Cluster struct {
	t      *testing.T
	runner Runner
	net    *memNet // InProcess only
	nodes  []*Node
}

// New starts n daemons on runner.
func New(t *testing.T, runner Runner, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, runner: runner}
	if runner == InProcess {
		c.net = newMemNet()
		t.Cleanup(func() { _ = c.net.mn.Close() })
	}
	for range n {
		c.Add()
	}
	return c
}

// Add starts one more daemon on a fresh data dir.
func (c *Cluster) Add() *Node {
	c.t.Helper()
	nd := &Node{t: c.t, c: c, index: len(c.nodes), dir: NewDataDir(c.t)}
	switch c.runner {
	case InProcess:
		nd.mem = &inProcess{t: c.t, dir: nd.dir, index: nd.index, net: c.net}
		nd.mem.start()
	case Processes:
		nd.proc = StartProcess(c.t, nd.dir, ProcessOptions{})
	default:
		c.t.Fatalf("unknown runner %q", c.runner)
	}
	c.nodes = append(c.nodes, nd)
	// Stopping nodes one by one would have each wait out its drain for
	// peers that are already gone; stop them together, before the
	// per-node cleanups (which run later and find them stopped).
	c.t.Cleanup(c.haltAll)
	return nd
}

func (c *Cluster) haltAll() {
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		if nd.mem != nil {
			wg.Go(nd.mem.halt)
		}
	}
	wg.Wait()
}

// Runner is where this cluster's daemons run.
func (c *Cluster) Runner() Runner { return c.runner }

// Needs skips the test unless the runner offers f.
func (c *Cluster) Needs(f Feature) {
	c.t.Helper()
	if !c.runner.has(f) {
		c.t.Skipf("the %s runner has no %s", c.runner, f)
	}
}

// Node is the i-th daemon, in start order.
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// Nodes are the daemons in start order.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Connect has node i add node j as a peer (`auractl peer add`).
func (c *Cluster) Connect(i, j int) {
	c.t.Helper()
	if out, code := c.nodes[i].Ctl("peer", "add", c.nodes[j].Addr()); code != 0 {
		c.t.Fatalf("node %d: peer add node %d: exit %d: %s", i, j, code, out)
	}
}

// ConnectAll has every node add every other.
func (c *Cluster) ConnectAll() {
	c.t.Helper()
	for i := range c.nodes {
		for j := range c.nodes {
			if i != j {
				c.Connect(i, j)
			}
		}
	}
}

// Partition splits the network into the groups of node indexes given; nodes
// in no group form one more group. Links across groups are cut and their
// connections dropped; messages within a group flow as before.
func (c *Cluster) Partition(groups ...[]int) {
	c.t.Helper()
	c.Needs(NetworkControl)
	side := map[peer.ID]int{}
	for g, members := range groups {
		for _, i := range members {
			side[c.nodes[i].peerID()] = g + 1
		}
	}
	if err := c.net.partition(side); err != nil {
		c.t.Fatal(err)
	}
}

// Heal joins every group again.
func (c *Cluster) Heal() {
	c.t.Helper()
	c.Needs(NetworkControl)
	if err := c.net.partition(nil); err != nil {
		c.t.Fatal(err)
	}
}

// SetLatency sets the one-way delay of every link.
func (c *Cluster) SetLatency(d time.Duration) {
	c.t.Helper()
	c.Needs(NetworkControl)
	c.net.setLatency(d)
}

// Node is one daemon of a cluster, on either runner.
type Node struct {
	t     *testing.T
	c     *Cluster
	index int
	dir   string
	mem   *inProcess
	proc  *Process
}

// Transport is the running node's transport, through which a test sends,
// charged and signed as the node, what its daemon never would: garbage, a
// forged fact. The node must be running.
//
// A process's transport is out of the test's reach, so on the processes
// runner the node's process is stopped and its data dir started in the test
// process, on real sockets like the process's: what it sends reaches the
// other nodes' processes over the network they use. The node stays in the
// test process from then on.
func (n *Node) Transport() *transport.Transport {
	n.c.Needs(Hostile)
	if n.proc != nil {
		n.proc.Stop()
		n.proc = nil
		n.mem = &inProcess{t: n.t, dir: n.dir, index: n.index}
		n.mem.start()
	}
	n.mem.mu.Lock()
	defer n.mem.mu.Unlock()
	return n.mem.n.Transport()
}

// Dir is the node's data dir.
func (n *Node) Dir() string { return n.dir }

// Index is the node's position in the cluster.
func (n *Node) Index() int { return n.index }

// Ready is what the node wrote to ready.json when it last started.
func (n *Node) Ready() node.ReadyInfo {
	if n.mem != nil {
		n.mem.mu.Lock()
		defer n.mem.mu.Unlock()
		return n.mem.ready
	}
	return n.proc.Ready()
}

// Log is what the node logged since it last started.
func (n *Node) Log() string {
	if n.mem != nil {
		n.mem.mu.Lock()
		defer n.mem.mu.Unlock()
		return n.mem.log.String()
	}
	return n.proc.Log()
}

// DeviceID is the node's device id (hex).
func (n *Node) DeviceID() string { return n.Ready().DeviceID }

// Socket is the node's control socket.
func (n *Node) Socket() string { return n.Ready().Socket }

func (n *Node) peerID() peer.ID {
	id, err := peer.Decode(n.Ready().PeerID)
	if err != nil {
		n.t.Fatalf("node %d: peer id %q: %v", n.index, n.Ready().PeerID, err)
	}
	return id
}

// Addr is the multiaddr (with /p2p/) other nodes dial: TCP when the node
// listens on TCP.
func (n *Node) Addr() string {
	addrs := n.Ready().ListenAddrs
	for _, a := range addrs {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	return addrs[0]
}

// Ctl runs auractl against the node; see the package function Ctl.
func (n *Node) Ctl(args ...string) (string, int) {
	n.t.Helper()
	return Ctl(n.t, n.dir, args...)
}

// MustCtl runs auractl and fails the test unless it exits 0.
func (n *Node) MustCtl(args ...string) string {
	n.t.Helper()
	out, code := n.Ctl(args...)
	if code != 0 {
		n.t.Fatalf("node %d: auractl %v: exit %d: %s", n.index, args, code, out)
	}
	return out
}

// CtlJSON runs auractl -o json and decodes its output into v.
func (n *Node) CtlJSON(v any, args ...string) {
	n.t.Helper()
	CtlJSON(n.t, n.dir, v, args...)
}

// Stop stops the node through `auractl stop` and waits until it has; a
// process must exit 0.
func (n *Node) Stop() {
	n.t.Helper()
	if n.proc != nil {
		n.proc.Stop()
		return
	}
	if out, code := n.Ctl("stop"); code != 0 {
		n.t.Fatalf("node %d: auractl stop: exit %d: %s", n.index, code, out)
	}
	n.mem.halt()
}

// Start starts a stopped or killed node again on its data dir and waits
// until it is ready.
func (n *Node) Start() {
	n.t.Helper()
	if n.proc != nil {
		n.proc.Start()
		return
	}
	n.mem.start()
}

// Restart is Stop then Start.
func (n *Node) Restart() {
	n.t.Helper()
	n.Stop()
	n.Start()
}

// Process is the node's aurad process on the processes runner (signals
// beyond Kill: SIGSTOP to freeze it mid-protocol), nil in-process.
func (n *Node) Process() *Process { return n.proc }

// Kill ends the daemon with SIGKILL: nothing of a shutdown runs. The
// scenario must have said c.Needs(Crash).
func (n *Node) Kill() {
	n.t.Helper()
	n.c.Needs(Crash)
	n.proc.Kill()
}
