package testkit

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/broker"
	"github.com/poste-io/poste/internal/config"
)

// Cluster is an in-process cluster of brokers, each a controller voter too
// (process.roles=broker,controller), on fixed loopback ports so that a restarted node keeps
// its addresses.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
}

// Node is one broker of a Cluster.
type Node struct {
	c        *Cluster
	ID       int32
	Dir      string
	Addr     string // client listener host:port
	CtrlAddr string // controller listener host:port
	B        *broker.Broker
	extra    map[string]string
	voters   string
	roles    string
}

// StartCluster starts n nodes with both roles; see StartClusterRoles.
func StartCluster(t testing.TB, n int, extra map[string]string) *Cluster {
	t.Helper()
	roles := make([]string, n)
	for i := range roles {
		roles[i] = "broker,controller"
	}
	return StartClusterRoles(t, roles, extra)
}

// StartClusterRoles starts one node per entry of roles (process.roles of node i+1); the
// nodes with the controller role are the voters. extra holds config overrides for all of
// them ("{id}" in a value becomes the node's id). It returns once every node is serving and
// every node with the broker role sees all of them registered and unfenced, so that a
// test's first Metadata request lists the whole cluster.
func StartClusterRoles(t testing.TB, roles []string, extra map[string]string) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	var voters []string
	n := len(roles)
	ports := newPortSet(t)
	for i := 1; i <= n; i++ {
		nd := &Node{c: c, ID: int32(i), Dir: t.TempDir(), Addr: ports.addr(), CtrlAddr: ports.addr(), extra: extra, roles: roles[i-1]}
		c.Nodes = append(c.Nodes, nd)
		if strings.Contains(nd.roles, "controller") {
			voters = append(voters, fmt.Sprintf("%d@%s", i, nd.CtrlAddr))
		}
	}
	for _, nd := range c.Nodes {
		nd.voters = strings.Join(voters, ",")
	}
	ports.release()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, nd := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = nd.start()
		}()
	}
	wg.Wait()
	t.Cleanup(c.Stop)
	for _, err := range errs {
		if err != nil {
			t.Fatalf("start cluster: %v", err)
		}
	}
	c.waitUnfenced()
	return c
}

// waitUnfenced waits until every broker-role node's metadata image has every broker-role
// node unfenced.
func (c *Cluster) waitUnfenced() {
	c.t.Helper()
	var want []int32
	for _, nd := range c.Nodes {
		if nd.isBroker() {
			want = append(want, nd.ID)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, nd := range c.Nodes {
			if nd.isBroker() && !slices.Equal(nd.B.Metadata().Image().UnfencedBrokers(), want) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("brokers %v not all registered and unfenced after 30s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (nd *Node) start() error {
	ov := map[string]string{
		"node.id":                  strconv.Itoa(int(nd.ID)),
		"process.roles":            nd.roles,
		"controller.quorum.voters": nd.voters,
		"log.dirs":                 nd.Dir,
	}
	switch nd.roles {
	case "broker":
		ov["listeners"] = "PLAINTEXT://" + nd.Addr
	case "controller":
		ov["listeners"] = "CONTROLLER://" + nd.CtrlAddr
	default:
		ov["listeners"] = "PLAINTEXT://" + nd.Addr + ",CONTROLLER://" + nd.CtrlAddr
	}
	for k, v := range nd.extra {
		ov[k] = strings.ReplaceAll(v, "{id}", strconv.Itoa(int(nd.ID)))
	}
	cfg, _, err := config.Load("", nil, ov)
	if err != nil {
		return fmt.Errorf("node %d config: %w", nd.ID, err)
	}
	b, err := broker.Start(cfg, Logger().With("node", nd.ID))
	if err != nil {
		return fmt.Errorf("node %d: %w", nd.ID, err)
	}
	nd.B = b
	return nil
}

// Addrs returns the client address of every node with the broker role (seed brokers).
func (c *Cluster) Addrs() []string {
	var out []string
	for _, nd := range c.Nodes {
		if nd.isBroker() {
			out = append(out, nd.Addr)
		}
	}
	return out
}

// isBroker reports whether the node has the broker role (clients may connect to it).
func (nd *Node) isBroker() bool { return nd.roles != "controller" }

// Node returns the node with the given id.
func (c *Cluster) Node(id int32) *Node { return c.Nodes[id-1] }

// Stop shuts every running node down.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, nd := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd.Stop()
		}()
	}
	wg.Wait()
}

// Stop shuts the node down cleanly (controlled shutdown); idempotent.
func (nd *Node) Stop() {
	if nd.B == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nd.B.Shutdown(ctx); err != nil {
		nd.c.t.Errorf("node %d shutdown: %v", nd.ID, err)
	}
	nd.B = nil
}

// Restart starts a stopped node again on its directory and ports.
func (nd *Node) Restart() {
	nd.c.t.Helper()
	nd.Stop()
	if err := nd.start(); err != nil {
		nd.c.t.Fatal(err)
	}
}
