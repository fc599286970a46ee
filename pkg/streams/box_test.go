package streams

import (
	"bytes"
	"reflect"
	"testing"
)

func TestBoxSlabMakesOrdinaryInterfaces(t *testing.T) {
	var s boxSlab
	var boxed []any
	var want [][]byte
	for i := range 3*boxBlock + 7 { // several blocks
		b := []byte{byte(i), byte(i >> 8)}
		want = append(want, b)
		boxed = append(boxed, s.box(b))
	}
	for i, x := range boxed {
		got, ok := x.([]byte)
		if !ok || !bytes.Equal(got, want[i]) || &got[0] != &want[i][0] {
			t.Fatalf("box %d = %v (%v), want the same slice %v", i, x, ok, want[i])
		}
		if reflect.TypeOf(x) != reflect.TypeOf([]byte(nil)) {
			t.Fatalf("box %d has type %v", i, reflect.TypeOf(x))
		}
	}
	if x := s.box(nil); x == nil || x.([]byte) != nil {
		t.Fatalf("a boxed nil slice is a non-nil interface holding nil, as any([]byte(nil)); got %#v", x)
	}
	bx, sx := boxer[[]byte](), boxer[string]()
	if v := bx(&s, []byte("k")); string(v.([]byte)) != "k" {
		t.Fatalf("boxer[[]byte] = %#v", v)
	}
	if v := sx(&s, "k"); v.(string) != "k" {
		t.Fatalf("boxer[string] = %#v", v)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = s.box(want[0]) }); n > 0.01 {
		t.Fatalf("%.2f allocations per box", n)
	}
}
