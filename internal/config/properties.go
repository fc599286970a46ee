package config

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ParseProperties reads a Java .properties file (the format of Kafka's
// server.properties) and returns its keys and values; a repeated key keeps its
// last value.
//
// The syntax is Java's: lines whose first non-blank character is '#' or '!'
// are comments; a key ends at the first unescaped '=', ':' or whitespace,
// and the separator may be surrounded by whitespace (so "k=v", "k: v" and
// "k v" are the same); a line ending in an odd number of backslashes
// continues on the next line, whose leading whitespace is dropped; escapes are
// \t \n \r \f, \uXXXX, and a backslash before any other character stands for
// that character. Leading whitespace of a value is dropped and trailing
// whitespace kept, as Java does; Load trims values when it parses them.
// Unlike Java, the input is read as UTF-8 rather than ISO-8859-1.
func ParseProperties(r io.Reader) (map[string]string, error) {
	props := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	lineNo := 0
	var logical strings.Builder
	continuing := false
	startLine := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSuffix(sc.Text(), "\r")
		// bufio.ScanLines splits on \n only; a lone \r also ends a line in Java.
		for _, part := range strings.Split(line, "\r") {
			part = strings.TrimLeft(part, " \t\f")
			if !continuing {
				if part == "" || part[0] == '#' || part[0] == '!' {
					continue // blank or comment; comments never continue
				}
				startLine = lineNo
			}
			if endsWithContinuation(part) {
				logical.WriteString(part[:len(part)-1])
				continuing = true
				continue
			}
			logical.WriteString(part)
			continuing = false
			if err := addProperty(props, logical.String(), startLine); err != nil {
				return nil, err
			}
			logical.Reset()
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if continuing { // a continuation at end of input ends the entry
		if err := addProperty(props, logical.String(), startLine); err != nil {
			return nil, err
		}
	}
	return props, nil
}

// endsWithContinuation reports whether s ends with an odd number of
// backslashes, so that its last one escapes the line end.
func endsWithContinuation(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// addProperty splits one logical line into key and value and stores them.
func addProperty(props map[string]string, line string, lineNo int) error {
	keyEnd := len(line)
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' {
			i++ // skip the escaped character
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			keyEnd = i
			break
		}
	}
	rest := line[keyEnd:]
	rest = strings.TrimLeft(rest, " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	key, err := unescape(line[:keyEnd])
	if err != nil {
		return fmt.Errorf("%w: line %d: %v", ErrMalformedProperties, lineNo, err)
	}
	val, err := unescape(rest)
	if err != nil {
		return fmt.Errorf("%w: line %d: %v", ErrMalformedProperties, lineNo, err)
	}
	props[key] = val
	return nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf(`malformed \uxxxx encoding`)
			}
			n, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf(`malformed \uxxxx encoding`)
			}
			r := rune(n)
			i += 4
			// A surrogate pair written as two escapes is one character.
			if utf16.IsSurrogate(r) && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if lo, err := strconv.ParseUint(s[i+3:i+7], 16, 16); err == nil {
					if d := utf16.DecodeRune(r, rune(lo)); d != utf8.RuneError {
						r = d
						i += 6
					}
				}
			}
			b.WriteRune(r)
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}
