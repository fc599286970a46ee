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
// meanwhile on port 0, get the same port. Ports come from [portFloor, the kernel's first
// ephemeral port) when that range is wide enough: there the outgoing connections of other
// tests running at the same time can never take a node's port before the node binds it, or
// when it restarts. Otherwise, or after 64 taken picks, it falls back to port 0.
//
// Not safe for concurrent use.
type portSet struct {
	t   testing.TB
	top int // the picks are below it; 0: always port 0
	lns []net.Listener
}

const portFloor = 10000

func newPortSet(t testing.TB) *portSet {
	p := &portSet{t: t}
	if lo := ephemeralLow(); lo-portFloor >= 1000 {
		p.top = lo
	}
	return p
}

// addr reserves a free loopback port and returns it as host:port.
func (p *portSet) addr() string {
	for i := 0; p.top > 0 && i < 64; i++ {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(portFloor+rand.IntN(p.top-portFloor))); err == nil {
			p.lns = append(p.lns, ln)
			return ln.Addr().String()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatal(err)
	}
	p.lns = append(p.lns, ln)
	return ln.Addr().String()
}

// release closes the reserving listeners so that the nodes can bind their ports.
func (p *portSet) release() {
	for _, ln := range p.lns {
		ln.Close()
	}
	p.lns = nil
}

// FreeAddr returns a loopback address whose port is free now, for a broker that a test
// starts itself. The port is chosen as portSet chooses, so that a broker restarted on it
// does not find it taken by another test's outgoing connection.
func FreeAddr(t testing.TB) string {
	p := newPortSet(t)
	defer p.release()
	return p.addr()
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	_, port, err := net.SplitHostPort(FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
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
