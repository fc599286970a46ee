package testkit

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemovePosteBinary()
	os.Exit(code)
}

// echoServer answers every connection by echoing what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends one byte through addr and reports whether it came back.
func roundTrip(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte{42}); err != nil {
		return false
	}
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	return err == nil && b[0] == 42
}

func TestTCPProxyBlackhole(t *testing.T) {
	p, err := NewTCPProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !roundTrip(p.Addr) {
		t.Fatal("no round trip through an open proxy")
	}
	// A connection made before the blackhole is cut by it.
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{1})
	var b [1]byte
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatal(err)
	}
	p.SetBlackhole(true)
	if !p.Blackholed() {
		t.Fatal("Blackholed() = false")
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	c.Write([]byte{2})
	if _, err := io.ReadFull(c, b[:]); err == nil {
		t.Fatal("an existing connection still passes traffic through a blackhole")
	}
	if roundTrip(p.Addr) {
		t.Fatal("a new connection passes traffic through a blackhole")
	}
	p.SetBlackhole(false)
	if !roundTrip(p.Addr) {
		t.Fatal("no round trip after the blackhole is lifted")
	}
}

// batch builds a fake v2 batch framing: base offset, length, then a body whose last
// offset delta is at its place in the header.
func batch(base int64, delta int32, bodyLen int) []byte {
	b := make([]byte, 12+bodyLen)
	binary.BigEndian.PutUint64(b, uint64(base))
	binary.BigEndian.PutUint32(b[8:], uint32(bodyLen))
	b[16] = 2 // magic
	binary.BigEndian.PutUint32(b[23:], uint32(delta))
	for i := 27; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

func TestReadLogBatches(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string][]byte
		wantBase []int64
		wantEnd  int64
	}{
		{name: "empty dir", files: map[string][]byte{}, wantEnd: 0},
		{
			name: "segments in offset order, not name order",
			files: map[string][]byte{
				"00000000000000000010.log":   append(batch(10, 4, 40), batch(15, 0, 30)...),
				"00000000000000000000.log":   append(batch(0, 4, 40), batch(5, 4, 50)...),
				"00000000000000000000.index": {1, 2, 3},
			},
			wantBase: []int64{0, 5, 10, 15}, wantEnd: 16,
		},
		{
			name:     "torn tail",
			files:    map[string][]byte{"00000000000000000000.log": append(batch(0, 1, 40), batch(2, 1, 40)[:30]...)},
			wantBase: []int64{0}, wantEnd: 2,
		},
		{
			name:     "zero-filled tail",
			files:    map[string][]byte{"00000000000000000000.log": append(batch(0, 2, 40), make([]byte, 100)...)},
			wantBase: []int64{0}, wantEnd: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, b := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ReadLogBatches(dir)
			if err != nil {
				t.Fatal(err)
			}
			var bases []int64
			for _, b := range got {
				bases = append(bases, b.BaseOffset)
				if int(binary.BigEndian.Uint32(b.Bytes[8:]))+12 != len(b.Bytes) {
					t.Errorf("batch %d: %d bytes do not match its length field", b.BaseOffset, len(b.Bytes))
				}
			}
			if len(bases) != len(tc.wantBase) {
				t.Fatalf("bases %v, want %v", bases, tc.wantBase)
			}
			for i := range bases {
				if bases[i] != tc.wantBase[i] {
					t.Fatalf("bases %v, want %v", bases, tc.wantBase)
				}
			}
			if e := EndOffset(got); e != tc.wantEnd {
				t.Errorf("end offset %d, want %d", e, tc.wantEnd)
			}
		})
	}
}

// TestProcClusterIsolation starts three poste processes, writes to a replicated topic
// straight to its leader, then cuts that leader off: another node takes the partition over;
// healed, the old leader rejoins the ISR. (Whether the isolated node still acknowledges
// acks=all writes is the broker's business, checked in test/fault.)
func TestProcClusterIsolation(t *testing.T) {
	c := StartProcCluster(t, ProcClusterConfig{Nodes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, nil, "t"); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("a full ISR", func() bool { ok, _ := c.FullISR(ctx, "t"); return ok })
	if _, err := c.ActiveController(ctx); err != nil {
		t.Fatal(err)
	}
	leader, epoch, err := c.Leader(ctx, "t", 0)
	if err != nil || leader < 0 {
		t.Fatalf("leader %d: %v", leader, err)
	}
	// The leader may not have applied the topic yet (UNKNOWN_TOPIC_OR_PARTITION).
	var code int16
	var off int64
	waitFor("a direct write acknowledged", func() bool {
		code, off, err = c.Node(leader).ProduceDirect(ctx, "t", 0, []byte("one"), -1, 5*time.Second)
		return err == nil && code != 3
	})
	if code != 0 || off != 0 {
		t.Fatalf("direct produce to the leader: code %d offset %d", code, off)
	}

	c.Isolate(leader)
	start := time.Now()
	waitFor("a new leader", func() bool {
		l, e, err := c.Leader(ctx, "t", 0)
		return err == nil && l >= 0 && l != leader && e > epoch
	})
	t.Logf("node %d isolated; the partition moved in %v", leader, time.Since(start).Round(time.Millisecond))
	c.Heal(leader)
	waitFor("a full ISR after healing", func() bool { ok, _ := c.FullISR(ctx, "t"); return ok })
	if err := c.StopAll(); err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.Nodes {
		if nd.Running() {
			t.Errorf("node %d still runs after StopAll", nd.ID)
		}
		if _, err := ReadLogBatches(nd.PartitionDir("t", 0)); err != nil {
			t.Errorf("node %d: %v", nd.ID, err)
		}
	}
}
