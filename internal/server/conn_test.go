package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/api"
)

// handlerFunc adapts a function to Handler.
type handlerFunc func(ctx context.Context, req *api.Request) (api.Response, error)

func (f handlerFunc) Handle(ctx context.Context, req *api.Request) (api.Response, error) {
	return f(ctx, req)
}

func startServer(t *testing.T, h Handler) string {
	t.Helper()
	s := New(Config{MaxRequestBytes: 1 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, h)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve("test", l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return l.Addr().String()
}

func metadataFrame(corr int32) []byte {
	return kmsg.NewRequestFormatter().AppendRequest(nil, kmsg.NewPtrMetadataRequest(), corr)
}

// A handler that panics closes its connection; the server keeps serving others.
func TestHandlerPanicClosesOnlyThatConnection(t *testing.T) {
	addr := startServer(t, handlerFunc(func(_ context.Context, req *api.Request) (api.Response, error) {
		if req.CorrelationID == 666 {
			panic("boom")
		}
		return kmsg.NewPtrMetadataResponse(), nil
	}))
	bad, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	bad.SetDeadline(time.Now().Add(5 * time.Second))
	bad.Write(metadataFrame(666))
	if _, err := bad.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection of the panicking request still open")
	}

	good, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	good.SetDeadline(time.Now().Add(5 * time.Second))
	good.Write(metadataFrame(1))
	if _, err := io.ReadFull(good, make([]byte, 8)); err != nil {
		t.Fatalf("server stopped serving after a panic: %v", err)
	}
}

// Responses are written in request order even when an earlier one completes later.
func TestDeferredResponsesKeepOrder(t *testing.T) {
	release := make(chan struct{})
	addr := startServer(t, handlerFunc(func(_ context.Context, req *api.Request) (api.Response, error) {
		if req.CorrelationID == 1 {
			return api.DeferFunc(func() api.Response {
				<-release
				return kmsg.NewPtrMetadataResponse()
			}), nil
		}
		return kmsg.NewPtrMetadataResponse(), nil
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(append(metadataFrame(1), metadataFrame(2)...))
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	for _, want := range []int32{1, 2} {
		hdr := make([]byte, 8)
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatal(err)
		}
		size := int(hdr[0])<<24 | int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
		corr := int32(hdr[4])<<24 | int32(hdr[5])<<16 | int32(hdr[6])<<8 | int32(hdr[7])
		if corr != want {
			t.Fatalf("response %d arrived before %d", corr, want)
		}
		io.ReadFull(c, make([]byte, size-4))
	}
}

// Regression: the read buffer was reused for every request, so bytes a handler kept (a group
// leader's SyncGroup assignments, handed to other members later) were overwritten by the next
// request on the connection. Only produce buffers may be reused.
func TestRetainedRequestBytesSurviveLaterRequests(t *testing.T) {
	kept := make(chan []byte, 2)
	addr := startServer(t, handlerFunc(func(_ context.Context, req *api.Request) (api.Response, error) {
		r := req.Body.(*kmsg.SyncGroupRequest)
		kept <- r.GroupAssignment[0].MemberAssignment
		return kmsg.NewPtrSyncGroupResponse(), nil
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	f := kmsg.NewRequestFormatter()
	for i, v := range []string{"AAAAAAAA", "BBBBBBBB"} {
		req := kmsg.NewPtrSyncGroupRequest()
		req.Version = 3
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = "m", []byte(v)
		req.GroupAssignment = append(req.GroupAssignment, a)
		c.Write(f.AppendRequest(nil, req, int32(i)))
		hdr := make([]byte, 4)
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatal(err)
		}
		io.ReadFull(c, make([]byte, int(hdr[0])<<24|int(hdr[1])<<16|int(hdr[2])<<8|int(hdr[3])))
	}
	if first := <-kept; string(first) != "AAAAAAAA" {
		t.Fatalf("bytes kept from the first request became %q", first)
	}
}
