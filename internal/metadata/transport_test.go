package metadata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestParseVoters(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Voter
		err  bool
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "1@localhost:9093", want: []Voter{{1, "localhost:9093"}}},
		{in: "1@a:9093, 2@b:9095 ,3@[::1]:9097", want: []Voter{{1, "a:9093"}, {2, "b:9095"}, {3, "[::1]:9097"}}},
		{in: "0@10.0.0.1:1", want: []Voter{{0, "10.0.0.1:1"}}},
		{in: "1@a:9093,", err: true},         // empty entry
		{in: "a:9093", err: true},            // no id
		{in: "x@a:9093", err: true},          // id not a number
		{in: "-1@a:9093", err: true},         // negative id
		{in: "4294967296@a:9093", err: true}, // id beyond int32
		{in: "1@a", err: true},               // no port
		{in: "1@:9093", err: true},           // no host
		{in: "1@a:0", err: true},             // port 0
		{in: "1@a:70000", err: true},         // port out of range
		{in: "1@a:http", err: true},          // named port
		{in: "1@a:9093,1@b:9093", err: true}, // duplicate id
		{in: "1@a:9093,2@a:9093", err: true}, // duplicate address
		{in: "1@a:9093@b", err: true},        // garbage after the port
		{in: "1@a:9093;2@b:9093", err: true}, // wrong separator
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseVoters(tc.in)
			if tc.err {
				if !errors.Is(err, ErrInvalidVoters) {
					t.Fatalf("got %v, %v; want ErrInvalidVoters", got, err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if s := (Voter{ID: 7, Addr: "h:1"}).String(); s != "7@h:1" {
		t.Fatalf("Voter.String() = %q", s)
	}
}

// acceptOne accepts from ln in the background.
func acceptOne(ln net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

func within(t *testing.T, ch <-chan net.Conn, what string) net.Conn {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatalf("%s: accept failed", what)
		}
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(2 * time.Second):
		t.Fatalf("%s: not accepted within 2s", what)
	}
	return nil
}

func TestSplitListenerRoutes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raftLn, other := SplitListener(ln)
	defer raftLn.Close()
	addr := ln.Addr().String()
	if raftLn.Addr().String() != addr || other.Addr().String() != addr {
		t.Fatal("split listeners do not report the shared address")
	}

	// A client that connects and says nothing must not hold up the others.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	// A raft connection, dialed as the store dials its peers.
	sl := newStreamLayer(&nopListener{}, "127.0.0.1:0")
	defer sl.Close()
	rc, err := sl.Dial(raft.ServerAddress(addr), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Write([]byte("raft-bytes")); err != nil {
		t.Fatal(err)
	}
	got := within(t, acceptOne(raftLn), "raft connection")
	buf := make([]byte, len("raft-bytes"))
	got.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(got, buf); err != nil || string(buf) != "raft-bytes" {
		t.Fatalf("raft side read %q, %v: the preface must be consumed and nothing else", buf, err)
	}

	// A Kafka request: 4-byte length, then the body. The first byte, which
	// routing had to read, must come back intact.
	body := []byte("\x00\x12\x00\x03kafka-request")
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	frame = append(frame, body...)
	kc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	if _, err := kc.Write(frame); err != nil {
		t.Fatal(err)
	}
	kgot := within(t, acceptOne(other), "kafka connection")
	kbuf := make([]byte, len(frame))
	kgot.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(kgot, kbuf); err != nil || !bytes.Equal(kbuf, frame) {
		t.Fatalf("kafka side read %q, %v; want %q", kbuf, err, frame)
	}
	// Both directions still work on the wrapped connection.
	if _, err := kgot.Write([]byte("resp")); err != nil {
		t.Fatal(err)
	}
	rbuf := make([]byte, 4)
	if _, err := io.ReadFull(kc, rbuf); err != nil || string(rbuf) != "resp" {
		t.Fatalf("client read %q, %v", rbuf, err)
	}
	if nc, ok := kgot.(interface{ NetConn() net.Conn }); !ok || nc.NetConn() == nil {
		t.Fatal("the wrapped connection does not expose the accepted one")
	}

	// Closing one side closes the other and the shared listener.
	raftLn.Close()
	if c, err := other.Accept(); err == nil {
		c.Close()
		t.Fatal("Accept on the other side after Close succeeded")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the shared listener still accepts")
	}
}

// A connection that closes before its first byte is dropped without
// disturbing the listener.
func TestSplitListenerDropsEmptyConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raftLn, other := SplitListener(ln)
	defer other.Close()
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{RaftPreface, 1})
	got := within(t, acceptOne(raftLn), "raft connection after empty ones")
	b := make([]byte, 1)
	if _, err := io.ReadFull(got, b); err != nil || b[0] != 1 {
		t.Fatalf("read %v, %v", b, err)
	}
}

// Closing the stream layer breaks connections it dialed, so that raft's
// shutdown never waits on an RPC to a silent peer.
func TestStreamLayerCloseBreaksDialedConns(t *testing.T) {
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	accepted := acceptOne(peer)
	own := &nopListener{}
	sl := newStreamLayer(own, "127.0.0.1:9")
	if sl.Addr().String() != "127.0.0.1:9" {
		t.Fatalf("Addr() = %v, want the configured address", sl.Addr())
	}
	c, err := sl.Dial(raft.ServerAddress(peer.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pc := within(t, accepted, "peer")
	b := make([]byte, 1)
	if _, err := io.ReadFull(pc, b); err != nil || b[0] != RaftPreface {
		t.Fatalf("peer read %v, %v; want the preface", b, err)
	}
	readErr := make(chan error, 1)
	go func() { // the peer never answers: this read blocks until Close
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	sl.Close()
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("read on a closed connection succeeded")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not break the dialed connection")
	}
	if !own.closed {
		t.Fatal("Close did not close the listener")
	}
	if _, err := sl.Dial(raft.ServerAddress(peer.Addr().String()), time.Second); err == nil {
		t.Fatal("Dial after Close succeeded")
	}
	if err, ok := sl.dialError(peer.Addr().String()); !ok || err != nil {
		t.Fatalf("last dial to the peer recorded as %v, %v", err, ok)
	}
}

// Whatever ParseVoters accepts prints back to a string that parses to the
// same voters.
func FuzzParseVoters(f *testing.F) {
	for _, s := range []string{"", "1@a:9093", "1@a:9093,2@[::1]:9095", "1@a:9093,1@b:1", "x@", "1@a:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		voters, err := ParseVoters(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidVoters) {
				t.Fatalf("error %v is not ErrInvalidVoters", err)
			}
			return
		}
		parts := make([]string, len(voters))
		for i, v := range voters {
			parts[i] = v.String()
		}
		again, err := ParseVoters(strings.Join(parts, ","))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(voters) {
			t.Fatalf("%q parsed to %v, which reparses to %v, %v", s, voters, again, err)
		}
	})
}
