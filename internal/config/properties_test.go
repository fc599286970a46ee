package config

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseProperties(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"separators", "a=1\nb:2\nc 3\nd\t4\ne = 5\nf : 6\ng   =   7", map[string]string{
			"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7"}},
		{"comments and blanks", "# c1\n! c2\n   # indented\n\n  \nk=v\n", map[string]string{"k": "v"}},
		{"hash inside value", "k=a#b", map[string]string{"k": "a#b"}},
		{"key only", "lonely\nk=", map[string]string{"lonely": "", "k": ""}},
		{"second separator is value", "k==v\nj=:v", map[string]string{"k": "=v", "j": ":v"}},
		{"leading whitespace of key", "   k=v", map[string]string{"k": "v"}},
		{"trailing whitespace kept", "k=v  ", map[string]string{"k": "v  "}},
		{"last wins", "k=1\nk=2", map[string]string{"k": "2"}},
		{"crlf", "a=1\r\nb=2\r\n", map[string]string{"a": "1", "b": "2"}},
		{"lone cr", "a=1\rb=2", map[string]string{"a": "1", "b": "2"}},
		{"continuation", "listeners=PLAINTEXT://a:1,\\\n    PLAINTEXT2://b:2\nx=y", map[string]string{
			"listeners": "PLAINTEXT://a:1,PLAINTEXT2://b:2", "x": "y"}},
		{"continuation of key", "lo\\\n  ng=v", map[string]string{"long": "v"}},
		{"even backslashes do not continue", "k=a\\\\\nj=b", map[string]string{"k": `a\`, "j": "b"}},
		{"continuation at eof", "k=a\\", map[string]string{"k": "a"}},
		{"continued comment is still a comment", "# c \\\nk=v", map[string]string{"k": "v"}},
		{"continuation line may start with #", "k=a\\\n#b", map[string]string{"k": "a#b"}},
		{"escapes", `k=\t\n\r\f\\\=\:\#\!\ x`, map[string]string{"k": "\t\n\r\f\\=:#! x"}},
		{"escaped separator in key", `a\=b=c` + "\n" + `d\ e f`, map[string]string{"a=b": "c", "d e": "f"}},
		{"unicode escape", `k=caf\u00e9 \u20AC`, map[string]string{"k": "café €"}},
		{"surrogate pair", `k=\uD83D\uDE00`, map[string]string{"k": "😀"}},
		{"utf8 passes through", "k=héllo", map[string]string{"k": "héllo"}},
		{"unknown escape drops backslash", `k=\q`, map[string]string{"k": "q"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProperties(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParsePropertiesMalformed(t *testing.T) {
	for _, in := range []string{`k=\u12`, `k=\uZZZZ`, "\\u00x=v", "ok=1\nk=\\u"} {
		_, err := ParseProperties(strings.NewReader(in))
		if !errors.Is(err, ErrMalformedProperties) {
			t.Errorf("%q: err = %v, want ErrMalformedProperties", in, err)
		}
	}
}

func FuzzParseProperties(f *testing.F) {
	for _, s := range []string{"a=b", "# c\nk v\\\n  w", `k=\u00e9\t`, "a:b\r\nc=d\re", `\uD83D\uDE00=x`, "k=\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseProperties(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrMalformedProperties) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		again, err := ParseProperties(strings.NewReader(in))
		if err != nil || !maps.Equal(got, again) {
			t.Fatalf("not deterministic")
		}
	})
}
