package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParseFormat(t *testing.T) {
	rec := &kgo.Record{
		Topic: "parties", Partition: 7, Offset: 42,
		Key: []byte("k"), Value: []byte("v"),
		Timestamp: time.UnixMilli(1700000000123),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}},
	}
	for _, tc := range []struct {
		format, want string
		usage        bool
	}{
		{format: `%v\n`, want: "v\n"},
		{format: `%t %p %o %k %v %T %h\n`, want: "parties 7 42 k v 1700000000123 a=1,b=2\n"},
		{format: `%k\t%v\r\n`, want: "k\tv\r\n"},
		{format: `100%% %v \\ done`, want: `100% v \ done`},
		{format: `plain`, want: "plain"},
		{format: `trailing\`, want: `trailing\`},
		{format: `%x`, usage: true},
		{format: `%`, usage: true},
		{format: `\q`, usage: true},
	} {
		t.Run(tc.format, func(t *testing.T) {
			f, err := parseFormat(tc.format)
			if tc.usage {
				if !errors.Is(err, ErrUsage) {
					t.Fatalf("parseFormat(%q) = %v, want a usage error", tc.format, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f.append(nil, rec)); got != tc.want {
				t.Fatalf("format %q: got %q, want %q", tc.format, got, tc.want)
			}
		})
	}
}

func TestAppendJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  *kgo.Record
		want string
	}{
		{
			name: "text",
			rec: &kgo.Record{Topic: "t", Partition: 1, Offset: 2, Timestamp: time.UnixMilli(3),
				Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}},
			want: `{"topic":"t","partition":1,"offset":2,"timestamp":3,"key":"k","value":"v","headers":[{"key":"h","value":"x"}]}`,
		},
		{
			name: "null key, empty value, no headers",
			rec:  &kgo.Record{Topic: "t", Timestamp: time.UnixMilli(0), Value: []byte{}},
			want: `{"topic":"t","partition":0,"offset":0,"timestamp":0,"key":null,"value":"","headers":[]}`,
		},
		{
			name: "binary",
			rec:  &kgo.Record{Topic: "t", Timestamp: time.UnixMilli(0), Key: []byte{0xff, 0xfe}, Value: []byte{0x80}},
			want: `{"topic":"t","partition":0,"offset":0,"timestamp":0,"key":"//4=","key_encoding":"base64","value":"gA==","value_encoding":"base64","headers":[]}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := appendJSON(nil, tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b); got != tc.want+"\n" {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON %s", b)
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "1700000000123", want: 1700000000123},
		{in: "0", want: 0},
		{in: "2024-06-01T00:00:00Z", want: 1717200000000},
		{in: "2024-06-01T02:00:00.5+02:00", want: 1717200000500},
		{in: "yesterday", bad: true},
		{in: "2024-06-01", bad: true},
	} {
		got, err := parseTimestamp(tc.in)
		switch {
		case tc.bad && !errors.Is(err, ErrUsage):
			t.Errorf("parseTimestamp(%q) = %d, %v; want a usage error", tc.in, got, err)
		case !tc.bad && (err != nil || got != tc.want):
			t.Errorf("parseTimestamp(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestOrderedPrinter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order []int
		lines map[int]string
		want  string
	}{
		{name: "in order", order: []int{0, 1, 2}, lines: map[int]string{0: "a", 1: "b", 2: "c"}, want: "abc"},
		{name: "reversed", order: []int{2, 1, 0}, lines: map[int]string{0: "a", 1: "b", 2: "c"}, want: "abc"},
		{name: "gap released by a failure", order: []int{1, 2, 0}, lines: map[int]string{0: "", 1: "b", 2: "c"}, want: "bc"},
		{name: "held until the gap fills", order: []int{1, 2}, lines: map[int]string{1: "b", 2: "c"}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := newOrderedPrinter(&buf)
			for _, seq := range tc.order {
				p.done(seq, tc.lines[seq])
			}
			if buf.String() != tc.want {
				t.Fatalf("got %q, want %q", buf.String(), tc.want)
			}
		})
	}
}

func TestExplainAndExitCode(t *testing.T) {
	seeds := []string{"localhost:9092"}
	dial := func(errno error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	for _, tc := range []struct {
		name     string
		err      error
		topic    string
		wantCode int
		wantMsg  string
	}{
		{name: "unknown topic", err: kerr.UnknownTopicOrPartition, topic: "t", wantCode: ExitUnknownTopic, wantMsg: `unknown topic "t"`},
		{name: "auth", err: fmt.Errorf("x: %w", kerr.TopicAuthorizationFailed), wantCode: ExitNotAuthorized, wantMsg: "not authorised to do it: TOPIC_AUTHORIZATION_FAILED"},
		{name: "refused", err: dial(syscall.ECONNREFUSED), wantCode: ExitUnreachable, wantMsg: "cannot reach broker localhost:9092: connection refused"},
		{name: "too old", err: errors.New("broker is too old; the broker has already indicated it will not know how to handle the request"), wantCode: ExitError, wantMsg: "do it: not supported by the broker"},
		{name: "other kafka error", err: kerr.PolicyViolation, wantCode: ExitError, wantMsg: "do it: POLICY_VIOLATION"},
		{name: "usage passes through", err: usagef("bad"), wantCode: ExitUsage, wantMsg: "bad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := explain(tc.err, "do it", tc.topic, seeds)
			if code := ExitCode(err); code != tc.wantCode {
				t.Errorf("exit code %d, want %d (%v)", code, tc.wantCode, err)
			}
			if !strings.HasPrefix(err.Error(), tc.wantMsg) {
				t.Errorf("message %q, want prefix %q", err, tc.wantMsg)
			}
		})
	}
	if ExitCode(nil) != ExitOK {
		t.Error("nil error must exit 0")
	}
}
