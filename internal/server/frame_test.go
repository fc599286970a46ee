package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/wire"
)

func frameOf(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestReadFrame(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		max     int32
		wantErr error
		want    []byte
	}{
		{"ok", frameOf([]byte("hello")), 100, nil, []byte("hello")},
		{"empty", frameOf(nil), 100, nil, []byte{}},
		{"at limit", frameOf(make([]byte, 8)), 8, nil, make([]byte, 8)},
		{"over limit", frameOf(make([]byte, 9)), 8, errFrameSize, nil},
		{"negative", []byte{0x80, 0, 0, 0}, 100, errFrameSize, nil},
		{"huge", []byte{0x7f, 0xff, 0xff, 0xff}, 100, errFrameSize, nil},
		{"truncated size", []byte{0, 0}, 100, io.ErrUnexpectedEOF, nil},
		{"truncated body", []byte{0, 0, 0, 5, 'a'}, 100, io.ErrUnexpectedEOF, nil},
		{"eof", nil, 100, io.EOF, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wire.ReadFrame(bytes.NewReader(tc.in), nil, tc.max)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err == nil && !bytes.Equal(got, tc.want) {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// A hostile length must not allocate: the refused frame leaves the buffer as it was.
func TestReadFrameRefusesBeforeAllocating(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 10; i++ {
		if _, err := wire.ReadFrame(bytes.NewReader([]byte{0x7f, 0xff, 0xff, 0xff}), nil, 1<<20); !errors.Is(err, errFrameSize) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("refusing ten 2 GiB frames allocated %d bytes", n)
	}
}

func TestParseHeader(t *testing.T) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("client-1"))
	for _, v := range []int16{0, 3, 4} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName = "x"
		req.ClientSoftwareVersion = "1"
		b := f.AppendRequest(nil, req, 42)[4:]
		h, err := parseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.key != 18 || h.version != v || h.correlationID != 42 || h.clientID != "client-1" {
			t.Fatalf("v%d: %+v", v, h)
		}
		got := kmsg.NewPtrApiVersionsRequest()
		got.Version = v
		if err := got.ReadFrom(b[h.bodyOffset:]); err != nil {
			t.Fatalf("v%d body: %v", v, err)
		}
		if v >= 3 && got.ClientSoftwareName != "x" {
			t.Fatalf("v%d body misaligned: %+v", v, got)
		}
	}
	if _, err := parseHeader([]byte{0x7f, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, errUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := parseHeader([]byte{0, 18, 0, 0}); !errors.Is(err, errShortHeader) {
		t.Fatalf("short: %v", err)
	}
	// A client id longer than the frame.
	if _, err := parseHeader([]byte{0, 18, 0, 0, 0, 0, 0, 1, 0, 50, 'a'}); !errors.Is(err, errShortHeader) {
		t.Fatalf("long client id: %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(frameOf([]byte("hello")), int32(100))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, int32(100))
	f.Add([]byte{0, 0, 0, 1}, int32(0))
	f.Add([]byte{0, 0, 0, 0, 7}, int32(68)) // a zero-length frame followed by the next one
	f.Fuzz(func(t *testing.T, in []byte, max int32) {
		if max < 0 {
			max = -max
		}
		max %= 1 << 20
		got, err := wire.ReadFrame(bytes.NewReader(in), nil, max)
		if err != nil {
			return
		}
		declared := int(binary.BigEndian.Uint32(in))
		if len(got) != declared || len(got) > int(max) || !bytes.Equal(got, in[4:4+declared]) {
			t.Fatalf("frame of %d bytes from a %d-byte prefix of %d input bytes, max %d", len(got), declared, len(in), max)
		}
	})
}

// FuzzParseRequest feeds arbitrary frames through header parsing and body decoding, exactly as
// a connection does: nothing may panic.
func FuzzParseRequest(f *testing.F) {
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for _, r := range []kmsg.Request{kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest(), kmsg.NewPtrProduceRequest(), kmsg.NewPtrFetchRequest()} {
		for _, v := range []int16{0, 4, 9, 12} {
			if v > r.MaxVersion() {
				continue
			}
			r.SetVersion(v)
			f.Add(fm.AppendRequest(nil, r, 1)[4:])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			return
		}
		if h.bodyOffset > len(b) {
			t.Fatalf("body offset %d past frame of %d", h.bodyOffset, len(b))
		}
		req := kmsg.RequestForKey(h.key)
		if h.version < 0 || h.version > req.MaxVersion() {
			return
		}
		req.SetVersion(h.version)
		_ = req.ReadFrom(b[h.bodyOffset:])
	})
}
