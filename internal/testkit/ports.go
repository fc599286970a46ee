package testkit

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// portSet hands out loopback addresses for the nodes of one cluster. It keeps a listener on
// each port it has handed out until release, so that no two nodes, and no proxy opened
// meanwhile on port 0, get the same port. Ports come from below the kernel's ephemeral
// range when it leaves room: there the outgoing connections of other tests running at the
// same time can never take a node's port before the node binds it, or when it restarts.
//
// Not safe for concurrent use.
type portSet struct {
	t   testing.TB
	lns []net.Listener
}

func newPortSet(t testing.TB) *portSet { return &portSet{t: t} }

// addr reserves a free loopback port and returns it as host:port.
func (p *portSet) addr() string {
	lo := ephemeralLow()
	const floor = 10000
	for range 64 {
		if lo-floor < 1000 {
			break
		}
		port := floor + rand.IntN(lo-floor)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		p.lns = append(p.lns, ln)
		return ln.Addr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatal(err)
	}
	p.lns = append(p.lns, ln)
	return ln.Addr().String()
}

// FreeAddr returns a loopback address whose port is free now, for a broker that a test
// starts itself. The port is chosen as portSet chooses, so that a broker restarted on it
// does not find it taken by another test's outgoing connection.
func FreeAddr(t testing.TB) string {
	p := newPortSet(t)
	defer p.release()
	return p.addr()
}

// release closes the reserving listeners so that the nodes can bind their ports.
func (p *portSet) release() {
	for _, ln := range p.lns {
		ln.Close()
	}
	p.lns = nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 where unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
