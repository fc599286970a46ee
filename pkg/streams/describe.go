package streams

import (
	"fmt"
	"strings"
)

// String renders the description as Kafka Streams' TopologyDescription.toString does.
func (d TopologyDescription) String() string {
	var b strings.Builder
	b.WriteString("Topologies:\n")
	for _, s := range d.Subtopologies {
		if s.Global {
			fmt.Fprintf(&b, "   Sub-topology: %d for global store (will not generate tasks)\n", s.ID)
		} else {
			fmt.Fprintf(&b, "   Sub-topology: %d\n", s.ID)
		}
		for _, n := range s.Nodes {
			switch n.Kind {
			case "Source":
				fmt.Fprintf(&b, "    Source: %s (topics: [%s])\n", n.Name, strings.Join(n.Topics, ", "))
			case "Processor":
				fmt.Fprintf(&b, "    Processor: %s (stores: [%s])\n", n.Name, strings.Join(n.Stores, ", "))
			case "Sink":
				fmt.Fprintf(&b, "    Sink: %s (topic: %s)\n", n.Name, strings.Join(n.Topics, ", "))
			}
			if n.Kind != "Sink" {
				succ := "none"
				if len(n.Successors) > 0 {
					succ = strings.Join(n.Successors, ", ")
				}
				fmt.Fprintf(&b, "      --> %s\n", succ)
			}
			if n.Kind != "Source" {
				fmt.Fprintf(&b, "      <-- %s\n", strings.Join(n.Predecessors, ", "))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// graphID makes a node, topic or store name safe as a Mermaid/DOT identifier.
func graphID(prefix, name string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Mermaid renders the topology as a Mermaid flowchart: one subgraph per sub-topology, topics
// as stadiums, stores as cylinders, so sub-topologies joined through a repartition topic show
// the data path between them.
func (d TopologyDescription) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	topics, stores := map[string]bool{}, map[string]bool{}
	var edges []string
	for _, s := range d.Subtopologies {
		fmt.Fprintf(&b, "  subgraph sub%d [\"Sub-topology %d\"]\n", s.ID, s.ID)
		for _, n := range s.Nodes {
			fmt.Fprintf(&b, "    %s[\"%s\"]\n", graphID("n_", n.Name), n.Name)
			for _, c := range n.Successors {
				edges = append(edges, fmt.Sprintf("  %s --> %s\n", graphID("n_", n.Name), graphID("n_", c)))
			}
			for _, t := range n.Topics {
				topics[t] = true
				if n.Kind == "Source" {
					edges = append(edges, fmt.Sprintf("  %s --> %s\n", graphID("t_", t), graphID("n_", n.Name)))
				} else {
					edges = append(edges, fmt.Sprintf("  %s --> %s\n", graphID("n_", n.Name), graphID("t_", t)))
				}
			}
			for _, st := range n.Stores {
				stores[st] = true
				edges = append(edges, fmt.Sprintf("  %s -.- %s\n", graphID("n_", n.Name), graphID("s_", st)))
			}
		}
		b.WriteString("  end\n")
	}
	for _, t := range sortedKeys(topics) {
		fmt.Fprintf(&b, "  %s([\"%s\"])\n", graphID("t_", t), t)
	}
	for _, st := range sortedKeys(stores) {
		fmt.Fprintf(&b, "  %s[(\"%s\")]\n", graphID("s_", st), st)
	}
	for _, e := range edges {
		b.WriteString(e)
	}
	return b.String()
}

// DOT renders the topology as a Graphviz digraph with the same shapes as Mermaid: clusters
// for sub-topologies, topics as ellipses, stores as cylinders.
func (d TopologyDescription) DOT() string {
	var b strings.Builder
	b.WriteString("digraph topology {\n  rankdir=TB;\n  node [shape=box];\n")
	topics, stores := map[string]bool{}, map[string]bool{}
	var edges []string
	for _, s := range d.Subtopologies {
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=\"Sub-topology %d\";\n", s.ID, s.ID)
		for _, n := range s.Nodes {
			fmt.Fprintf(&b, "    %s [label=%q];\n", graphID("n_", n.Name), n.Name)
			for _, c := range n.Successors {
				edges = append(edges, fmt.Sprintf("  %s -> %s;\n", graphID("n_", n.Name), graphID("n_", c)))
			}
			for _, t := range n.Topics {
				topics[t] = true
				if n.Kind == "Source" {
					edges = append(edges, fmt.Sprintf("  %s -> %s;\n", graphID("t_", t), graphID("n_", n.Name)))
				} else {
					edges = append(edges, fmt.Sprintf("  %s -> %s;\n", graphID("n_", n.Name), graphID("t_", t)))
				}
			}
			for _, st := range n.Stores {
				stores[st] = true
				edges = append(edges, fmt.Sprintf("  %s -> %s [dir=both, style=dashed];\n", graphID("n_", n.Name), graphID("s_", st)))
			}
		}
		b.WriteString("  }\n")
	}
	for _, t := range sortedKeys(topics) {
		fmt.Fprintf(&b, "  %s [label=%q, shape=ellipse];\n", graphID("t_", t), t)
	}
	for _, st := range sortedKeys(stores) {
		fmt.Fprintf(&b, "  %s [label=%q, shape=cylinder];\n", graphID("s_", st), st)
	}
	for _, e := range edges {
		b.WriteString(e)
	}
	b.WriteString("}\n")
	return b.String()
}
