package api

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// docs/compatibility.md lists every served API with its versions; this keeps it true.
func TestCompatibilityDocMatchesServedVersions(t *testing.T) {
	b, err := os.ReadFile("../../docs/compatibility.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, r := range Supported() {
		row := fmt.Sprintf("| %s | %d | %d–%d |", kmsg.NameForKey(r.Key), r.Key, r.Min, r.Max)
		if !strings.Contains(doc, row) {
			t.Errorf("docs/compatibility.md lacks the row %q", row)
		}
	}
}
