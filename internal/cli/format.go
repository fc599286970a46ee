package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordFormat prints records with a kcat-like template:
//
//	%t topic   %p partition   %o offset   %k key   %v value
//	%T timestamp (Unix ms)    %h headers as k=v,k2=v2   %% a percent sign
//
// and the escapes \n \t \r \\ in the literal text. It is immutable once parsed and safe
// for concurrent use.
type recordFormat struct {
	parts []formatPart
}

// formatPart is literal text, or a verb when verb != 0.
type formatPart struct {
	lit  string
	verb byte
}

// parseFormat compiles a --format template; an unknown verb or escape is a usage error.
func parseFormat(s string) (*recordFormat, error) {
	var f recordFormat
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.parts = append(f.parts, formatPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+1 == len(s) {
				return nil, usagef("--format %q ends with a lone %%", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit.WriteByte('%')
			case 't', 'p', 'o', 'k', 'v', 'T', 'h':
				flush()
				f.parts = append(f.parts, formatPart{verb: v})
			default:
				return nil, usagef("--format %q: unknown verb %%%c (want %%t %%p %%o %%k %%v %%T %%h or %%%%)", s, v)
			}
		case '\\':
			if i+1 == len(s) {
				lit.WriteByte('\\')
				continue
			}
			i++
			switch e := s[i]; e {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '\\':
				lit.WriteByte('\\')
			default:
				return nil, usagef("--format %q: unknown escape \\%c (want \\n \\t \\r or \\\\)", s, e)
			}
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return &f, nil
}

// append appends r, formatted, to b.
func (f *recordFormat) append(b []byte, r *kgo.Record) []byte {
	for _, p := range f.parts {
		switch p.verb {
		case 0:
			b = append(b, p.lit...)
		case 't':
			b = append(b, r.Topic...)
		case 'p':
			b = strconv.AppendInt(b, int64(r.Partition), 10)
		case 'o':
			b = strconv.AppendInt(b, r.Offset, 10)
		case 'k':
			b = append(b, r.Key...)
		case 'v':
			b = append(b, r.Value...)
		case 'T':
			b = strconv.AppendInt(b, r.Timestamp.UnixMilli(), 10)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, h.Key...)
				b = append(b, '=')
				b = append(b, h.Value...)
			}
		}
	}
	return b
}

// jsonRecord is the --json form of a record. Keys and values that are not valid UTF-8
// are base64 and say so in key_encoding / value_encoding; a null key or value is null.
type jsonRecord struct {
	Topic         string       `json:"topic"`
	Partition     int32        `json:"partition"`
	Offset        int64        `json:"offset"`
	Timestamp     int64        `json:"timestamp"`
	Key           *string      `json:"key"`
	KeyEncoding   string       `json:"key_encoding,omitempty"`
	Value         *string      `json:"value"`
	ValueEncoding string       `json:"value_encoding,omitempty"`
	Headers       []jsonHeader `json:"headers"`
}

type jsonHeader struct {
	Key           string  `json:"key"`
	Value         *string `json:"value"`
	ValueEncoding string  `json:"value_encoding,omitempty"`
}

// jsonBytes returns b as text when it is UTF-8, else as base64 with the encoding's name.
func jsonBytes(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s, "base64"
}

// appendJSON appends r as one line of JSON to b.
func appendJSON(b []byte, r *kgo.Record) ([]byte, error) {
	j := jsonRecord{
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Timestamp: r.Timestamp.UnixMilli(),
		Headers:   make([]jsonHeader, 0, len(r.Headers)),
	}
	j.Key, j.KeyEncoding = jsonBytes(r.Key)
	j.Value, j.ValueEncoding = jsonBytes(r.Value)
	for _, h := range r.Headers {
		jh := jsonHeader{Key: h.Key}
		jh.Value, jh.ValueEncoding = jsonBytes(h.Value)
		j.Headers = append(j.Headers, jh)
	}
	out, err := json.Marshal(&j)
	if err != nil {
		return b, fmt.Errorf("encode record as JSON: %w", err)
	}
	return append(append(b, out...), '\n'), nil
}
