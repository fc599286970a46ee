// Package arch holds the test that enforces the import layers of docs/architecture.md.
package arch

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/poste-io/poste"

// layer of every package under internal/; imports may only go to lower layers. Client-side
// packages (layer -1) may import no broker package at all.
var layers = map[string]int{
	"internal/config": 1, "internal/record": 1, "internal/vfs": 1, "internal/wire": 1,
	"internal/log": 2, "internal/metadata": 2,
	"internal/partition": 3, "internal/controller": 3,
	"internal/replica": 4, "internal/coord": 4,
	"internal/group": 5, "internal/txn": 5, "internal/cluster": 5,
	"internal/api":    6,
	"internal/server": 7,
	"internal/broker": 8, "cmd/poste": 9,
	"internal/cli": -1, "internal/console": -1, "internal/connect": -1, "examples": -1,
}

// layerOf finds the layer of a package of this module, by its longest listed prefix.
func layerOf(rel string) (int, bool) {
	best, found, bestLen := 0, false, -1
	for p, l := range layers {
		if (rel == p || strings.HasPrefix(rel, p+"/")) && len(p) > bestLen {
			best, found, bestLen = l, true, len(p)
		}
	}
	if strings.HasPrefix(rel, "pkg/") {
		return -1, true
	}
	return best, found
}

func TestImportLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if strings.HasPrefix(rel, "internal/testkit") || strings.HasPrefix(rel, "internal/arch") || strings.HasPrefix(rel, "test/") {
			continue // tests may reach anything
		}
		from, ok := layerOf(rel)
		if !ok {
			t.Errorf("package %s has no layer: add it to the table (and to docs/architecture.md)", rel)
			continue
		}
		checked++
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			irel := strings.TrimPrefix(imp, module+"/")
			to, ok := layerOf(irel)
			if !ok {
				continue // reported on its own
			}
			switch {
			case from == -1 && to != -1:
				t.Errorf("%s is client-side and must not import the broker package %s", rel, irel)
			case from > 0 && to > 0 && to >= from:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must go down the layers", rel, from, irel, to)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no packages checked")
	}
}
