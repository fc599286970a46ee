package e2e

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/testkit"
)

// rawConn speaks the wire protocol by hand, to test framing and ordering.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *rawConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes a request with the given correlation id.
func (r *rawConn) send(req kmsg.Request, corr int32) {
	r.t.Helper()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw"))
	b := f.AppendRequest(nil, req, corr)
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads one response frame and returns its correlation id and body (after the header).
func (r *rawConn) recv(flexibleHeader bool) (int32, []byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r.br, sz[:]); err != nil {
		return 0, nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err := io.ReadFull(r.br, b); err != nil {
		return 0, nil, err
	}
	corr := int32(binary.BigEndian.Uint32(b))
	b = b[4:]
	if flexibleHeader {
		b = b[1:] // empty tagged fields
	}
	return corr, b, nil
}

// expectClosed asserts the broker closes the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	_, _, err := r.recv(false)
	if err == nil {
		r.t.Fatal("connection still open")
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatal("connection not closed (timed out waiting)")
		}
	}
}

func TestOversizeFrameClosesConnection(t *testing.T) {
	b := testkit.StartBroker(t, map[string]string{"socket.request.max.bytes": "1048576"})
	for _, size := range []uint32{1<<20 + 1, 0x80000000, 0xffffffff} {
		r := dial(t, b.Addr)
		var sz [4]byte
		binary.BigEndian.PutUint32(sz[:], size)
		r.c.Write(sz[:])
		r.expectClosed()
	}
	// The broker still serves others.
	r := dial(t, b.Addr)
	r.send(kmsg.NewPtrApiVersionsRequest(), 1)
	if _, _, err := r.recv(false); err != nil {
		t.Fatalf("broker unusable after bad frames: %v", err)
	}
}

func TestGarbageClosesConnection(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	cases := map[string][]byte{
		"unknown key":      {0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0},
		"short header":     {0, 0, 0, 3, 0, 3, 0},
		"truncated body":   append([]byte{0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0, 0}, 0x7f, 0xff, 0xff, 0xff),
		"unsupported prod": {0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}, // produce v1
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			r := dial(t, b.Addr)
			r.c.Write(frame)
			r.expectClosed()
		})
	}
}

func TestApiVersionsUnsupportedVersion(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	r := dial(t, b.Addr)
	// Version 99 of ApiVersions: the header is v1-shaped for unknown versions.
	frame := []byte{0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 7, 0, 0}
	r.c.Write(frame)
	corr, body, err := r.recv(false)
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if corr != 7 || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
		t.Fatalf("corr %d err %d keys %d", corr, resp.ErrorCode, len(resp.ApiKeys))
	}
}

func TestPipelinedResponsesInOrderAndAcksZero(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	createTopic(t, b.Addr, "pipe", 1, nil)
	r := dial(t, b.Addr)

	mkProduce := func(acks int16, val string) *kmsg.ProduceRequest {
		raw, err := record.Build(nil, record.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli()},
			[]record.Record{{Value: []byte(val)}})
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrProduceRequest()
		req.Version = 9
		req.Acks = acks
		req.TimeoutMillis = 5000
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic = "pipe"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = raw
		tp.Partitions = append(tp.Partitions, pp)
		req.Topics = append(req.Topics, tp)
		return req
	}
	// corr 1: acks=all, 2: acks=0 (no response), 3: metadata, 4: acks=1
	r.send(mkProduce(-1, "a"), 1)
	r.send(mkProduce(0, "b"), 2)
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	r.send(md, 3)
	r.send(mkProduce(1, "c"), 4)
	var order []int32
	for i := 0; i < 3; i++ {
		corr, body, err := r.recv(true)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, corr)
		if corr == 1 || corr == 4 {
			pr := kmsg.NewPtrProduceResponse()
			pr.Version = 9
			if err := pr.ReadFrom(body); err != nil {
				t.Fatal(err)
			}
			if ec := pr.Topics[0].Partitions[0].ErrorCode; ec != 0 {
				t.Fatalf("produce %d: error %d", corr, ec)
			}
			want := map[int32]int64{1: 0, 4: 2}[corr]
			if got := pr.Topics[0].Partitions[0].BaseOffset; got != want {
				t.Fatalf("produce %d at offset %d, want %d", corr, got, want)
			}
		}
	}
	if order[0] != 1 || order[1] != 3 || order[2] != 4 {
		t.Fatalf("responses in order %v, want [1 3 4]", order)
	}
}
