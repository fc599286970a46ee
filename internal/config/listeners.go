package config

import (
	"net"
	"strconv"
	"strings"
)

// Listener is one parsed NAME://host:port entry of listeners or
// advertised.listeners.
//
// An empty Host in listeners means every interface; Port 0 in listeners means
// the server picks a free port, and must then advertise the bound port in
// place of an advertised listener that was derived from it (Broker.Sources
// shows advertised.listeners as DEFAULT_CONFIG in that case).
type Listener struct {
	// Name is the listener name, upper-cased (PLAINTEXT, INTERNAL, ...).
	Name string
	Host string
	Port int
	// SecurityProtocol is the listener's protocol from
	// listener.security.protocol.map (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL).
	SecurityProtocol string
}

// Addr returns host:port, bracketing IPv6 hosts.
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// String returns the listener in NAME://host:port form.
func (l Listener) String() string { return l.Name + "://" + l.Addr() }

var securityProtocols = []string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}

// parseListeners parses "NAME://host:port,..." (SecurityProtocol is filled in
// later, once the protocol map is known). Names must be distinct.
func parseListeners(key, v string) ([]Listener, *Error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	var out []Listener
	seen := map[string]bool{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		bad := func(why string) *Error {
			return invalidValue(key, v, "Unable to parse "+item+" as a listener NAME://host:port: "+why)
		}
		name, hostPort, ok := strings.Cut(item, "://")
		if !ok {
			return nil, bad("missing ://")
		}
		name = strings.ToUpper(name)
		if name == "" || strings.IndexFunc(name, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}) >= 0 {
			return nil, bad("listener name must be letters, digits, '_' or '-'")
		}
		host, portText, err := net.SplitHostPort(hostPort)
		if err != nil {
			return nil, bad("want host:port")
		}
		port, err := strconv.Atoi(portText)
		if err != nil || port < 0 || port > 65535 {
			return nil, bad("port must be 0-65535")
		}
		if seen[name] {
			return nil, invalidValue(key, v, "Each listener must have a different name, "+name+" is repeated")
		}
		seen[name] = true
		out = append(out, Listener{Name: name, Host: host, Port: port})
	}
	return out, nil
}

// parseProtocolMap parses "NAME:PROTOCOL,..." into a map keyed by upper-cased
// listener name.
func parseProtocolMap(key, v string) (map[string]string, *Error) {
	out := map[string]string{}
	v = strings.TrimSpace(v)
	if v == "" {
		return out, nil
	}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		name, proto, ok := strings.Cut(item, ":")
		name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
		if !ok || name == "" {
			return nil, invalidValue(key, v, "Unable to parse "+item+" as NAME:PROTOCOL")
		}
		known := false
		for _, p := range securityProtocols {
			known = known || p == proto
		}
		if !known {
			return nil, invalidValue(key, v, "Unknown security protocol "+proto+" for listener "+name+
				", must be one of: "+strings.Join(securityProtocols, ", "))
		}
		if _, dup := out[name]; dup {
			return nil, invalidValue(key, v, "Listener name "+name+" is mapped twice")
		}
		out[name] = proto
	}
	return out, nil
}

// Voter is one entry of controller.quorum.voters: a node id and the address
// of its controller listener.
type Voter struct {
	ID   int32
	Host string
	Port int
}

// Addr returns host:port.
func (v Voter) Addr() string { return net.JoinHostPort(v.Host, strconv.Itoa(v.Port)) }

// parseVoters parses "id@host:port,..." (Kafka's controller.quorum.voters).
func parseVoters(key, v string) ([]Voter, *Error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	var out []Voter
	seen := map[int32]bool{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		bad := func(why string) *Error {
			return invalidValue(key, v, "Unable to parse "+item+" as a voter id@host:port: "+why)
		}
		idText, hostPort, ok := strings.Cut(item, "@")
		if !ok {
			return nil, bad("missing @")
		}
		id, err := strconv.ParseInt(idText, 10, 32)
		if err != nil || id < 0 {
			return nil, bad("the id must be a non-negative integer")
		}
		host, portText, err := net.SplitHostPort(hostPort)
		if err != nil || host == "" {
			return nil, bad("want host:port")
		}
		port, err := strconv.Atoi(portText)
		if err != nil || port <= 0 || port > 65535 {
			return nil, bad("port must be 1-65535")
		}
		if seen[int32(id)] {
			return nil, invalidValue(key, v, "Each voter must have a different id, "+idText+" is repeated")
		}
		seen[int32(id)] = true
		out = append(out, Voter{ID: int32(id), Host: host, Port: port})
	}
	return out, nil
}

func votersCheck(name, v string) *Error {
	_, err := parseVoters(name, v)
	return err
}
