package streams

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestSerdesMatchKafkaEncodings(t *testing.T) {
	cases := []struct {
		name string
		enc  func() ([]byte, error)
		want []byte
	}{
		{"int32", func() ([]byte, error) { return Int32().Serialize("t", -2) }, []byte{0xff, 0xff, 0xff, 0xfe}},
		{"int64", func() ([]byte, error) { return Int64().Serialize("t", 258) }, []byte{0, 0, 0, 0, 0, 0, 1, 2}},
		{"float64", func() ([]byte, error) { return Float64().Serialize("t", 1.0) }, []byte{0x3f, 0xf0, 0, 0, 0, 0, 0, 0}},
		{"string", func() ([]byte, error) { return String().Serialize("t", "héllo") }, []byte("héllo")},
		{"bytes", func() ([]byte, error) { return Bytes().Serialize("t", []byte{1, 2}) }, []byte{1, 2}},
		{"json", func() ([]byte, error) { return JSON[map[string]int]().Serialize("t", map[string]int{"a": 1}) }, []byte(`{"a":1}`)},
	}
	for _, c := range cases {
		got, err := c.enc()
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: got %x, %v; want %x", c.name, got, err, c.want)
		}
	}
}

func TestSerdesRoundTripAndErrors(t *testing.T) {
	if v, err := Int64().Deserialize("t", []byte{0x80, 0, 0, 0, 0, 0, 0, 0}); err != nil || v != math.MinInt64 {
		t.Errorf("int64 min: %d %v", v, err)
	}
	if v, err := Float64().Deserialize("t", []byte{0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18}); err != nil || v != math.Pi {
		t.Errorf("float64 pi: %v %v", v, err)
	}
	if v, err := Int32().Deserialize("t", nil); err != nil || v != 0 {
		t.Errorf("int32 null: %v %v", v, err)
	}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"int32 short", func() error { _, err := Int32().Deserialize("t", []byte{1}); return err }()},
		{"int64 short", func() error { _, err := Int64().Deserialize("t", []byte{1, 2, 3}); return err }()},
		{"float64 long", func() error { _, err := Float64().Deserialize("t", make([]byte, 9)); return err }()},
		{"json bad", func() error { _, err := JSON[int]().Deserialize("t", []byte("{")); return err }()},
	} {
		if !errors.Is(c.err, ErrSerde) {
			t.Errorf("%s: got %v, want ErrSerde", c.name, c.err)
		}
	}
}

func TestMemKVOrderAndDelete(t *testing.T) {
	s := newMemKV()
	for _, k := range []string{"c", "a", "d", "b"} {
		s.put([]byte(k), []byte("v"+k))
	}
	s.del([]byte("c"))
	var got []string
	s.scan([]byte("a"), []byte("c"), func(k, v []byte) bool { got = append(got, string(k)+"="+string(v)); return true })
	if want := "a=va b=vb"; join(got) != want {
		t.Fatalf("scan a..c = %q, want %q", join(got), want)
	}
	got = nil
	s.scan(nil, nil, func(k, _ []byte) bool { got = append(got, string(k)); return len(got) < 2 })
	if want := "a b"; join(got) != want {
		t.Fatalf("scan with stop = %q, want %q", join(got), want)
	}
	if s.len() != 3 {
		t.Fatalf("len = %d", s.len())
	}
}

func join(ss []string) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}
