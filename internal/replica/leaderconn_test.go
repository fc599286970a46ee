package replica

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeLeader answers one connection: ApiVersions v0 (Fetch up to v12, which keeps topic
// names), then each Fetch with answer(request, correlation id), raw bytes after the size.
func fakeLeader(t *testing.T, answer func(req *kmsg.FetchRequest, corr int32) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			var size [4]byte
			if _, err := io.ReadFull(r, size[:]); err != nil {
				return
			}
			frame := make([]byte, binary.BigEndian.Uint32(size[:]))
			if _, err := io.ReadFull(r, frame); err != nil {
				return
			}
			key, version := int16(binary.BigEndian.Uint16(frame)), int16(binary.BigEndian.Uint16(frame[2:]))
			corr := int32(binary.BigEndian.Uint32(frame[4:]))
			var body []byte
			switch key {
			case kmsg.ApiVersions.Int16():
				resp := kmsg.NewApiVersionsResponse()
				resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: kmsg.Fetch.Int16(), MaxVersion: 12}}
				body = binary.BigEndian.AppendUint32(nil, uint32(corr))
				body = resp.AppendTo(body)
			case kmsg.Fetch.Int16():
				req := kmsg.NewFetchRequest()
				req.SetVersion(version)
				// Header v2: client id (int16 length), then empty tagged fields.
				idLen := int(binary.BigEndian.Uint16(frame[8:]))
				if err := req.ReadFrom(frame[10+idLen+1:]); err != nil {
					t.Errorf("decoding the fetch: %v", err)
					return
				}
				body = answer(&req, corr)
			}
			out := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
			if _, err := c.Write(append(out, body...)); err != nil {
				return
			}
		}
	}()
	return ln.Addr().String()
}

// fetchResponse encodes a v12 fetch response (flexible: its header has tagged fields, here
// one unknown tag that must be skipped) with the given record bytes.
func fetchResponse(corr int32, records []byte) []byte {
	resp := kmsg.NewFetchResponse()
	resp.SetVersion(12)
	t := kmsg.NewFetchResponseTopic()
	t.Topic = "t"
	p := kmsg.NewFetchResponseTopicPartition()
	p.HighWatermark, p.RecordBatches = 42, records
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	b := binary.BigEndian.AppendUint32(nil, uint32(corr))
	b = append(b, 1, 7, 2, 0xaa, 0xbb) // one tag (7) of 2 bytes
	return resp.AppendTo(b)
}

func TestLeaderConn(t *testing.T) {
	addr := fakeLeader(t, func(req *kmsg.FetchRequest, corr int32) []byte {
		if req.Version != 12 || req.Topics[0].Topic != "t" {
			t.Errorf("fetch v%d of %+v, want v12 of t", req.Version, req.Topics)
		}
		return fetchResponse(corr, []byte(strings.Repeat("x", int(req.Topics[0].Partitions[0].FetchOffset))))
	})
	c := newLeaderConn(addr)
	defer c.close()
	ctx := context.Background()
	var first []byte
	for _, n := range []int64{100, 50} {
		req := kmsg.NewPtrFetchRequest()
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset = n
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := c.request(ctx, req, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if p.HighWatermark != 42 || string(p.RecordBatches) != strings.Repeat("x", int(n)) {
			t.Fatalf("partition %+v", p)
		}
		if first == nil {
			first = p.RecordBatches
		} else if &first[0] != &p.RecordBatches[0] {
			// The second response was read into the first one's buffer.
			t.Fatal("the response buffer was not reused")
		}
	}
}

// TestLeaderConnRefusesBadResponses: a response for another request or of an impossible size
// fails the request and closes the connection.
func TestLeaderConnRefusesBadResponses(t *testing.T) {
	for name, answer := range map[string]func(*kmsg.FetchRequest, int32) []byte{
		"wrong correlation id": func(_ *kmsg.FetchRequest, corr int32) []byte { return fetchResponse(corr+1, nil) },
		"truncated tags":       func(_ *kmsg.FetchRequest, corr int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(corr)) },
	} {
		t.Run(name, func(t *testing.T) {
			c := newLeaderConn(fakeLeader(t, answer))
			defer c.close()
			if _, err := c.request(context.Background(), kmsg.NewPtrFetchRequest(), 0); err == nil {
				t.Fatal("request succeeded")
			}
			if c.conn != nil {
				t.Fatal("connection left open after a bad response")
			}
		})
	}
}
