package main

import (
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/identitychain/auth/internal/annotation"
	"github.com/identitychain/auth/internal/quote"
)

// The library's refusals of an annotation value are sentences that start
// with what is at fault. These find it in the value, so a finding points at
// the line of the field rather than of the annotation.
var (
	// reasonLine starts a refusal of the value's YAML: "line 3: ...".
	reasonLine = regexp.MustCompile(`^line (\d+): `)
	// reasonTwice is a field set twice: "field 'duration' is set twice
	// (lines 2 and 5)"; the second one is at fault.
	reasonTwice = regexp.MustCompile(`^field '[^']*' is set twice \(lines \d+ and (\d+)\)`)
	// reasonUnknown is a key that names no field, quoted by the library.
	reasonUnknown = regexp.MustCompile(`^unknown field ('(?:[^'\\]|\\.)*')`)
	// reasonPath is the path a refusal starts with: "duration",
	// "policyARNs[3]", "sessionTags['team']".
	reasonPath = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9]*)((?:\[\d+\]|\['(?:[^'\\]|\\.)*'\])*)(?: |$)`)
	pathStep   = regexp.MustCompile(`\[(\d+)\]|\[('(?:[^'\\]|\\.)*')\]`)
)

// locateRefusal finds where in value, an annotation value the library
// refused for reason, the fault is: the line and column in the value
// (1-based; column 0 when only the line is known) and the path of the
// field, such as "duration" or "transitiveTagKeys[1]"; 0, 0 and "" when
// the reason names nothing the value holds.
func locateRefusal(value, reason string) (line, col int, field string) {
	if sm := reasonLine.FindStringSubmatch(reason); sm != nil {
		n, _ := strconv.Atoi(sm[1])
		return n, 0, ""
	}
	if len(value) > annotation.MaxValueBytes {
		return 0, 0, "" // refused before parsing: the library did not read it
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil || len(doc.Content) == 0 ||
		doc.Content[0].Kind != yaml.MappingNode {
		return 0, 0, ""
	}
	root := doc.Content[0]
	if sm := reasonTwice.FindStringSubmatch(reason); sm != nil {
		n, _ := strconv.Atoi(sm[1])
		for i := 0; i+1 < len(root.Content); i += 2 {
			if k := root.Content[i]; k.Line == n {
				return n, k.Column, ""
			}
		}
		return n, 0, ""
	}
	if sm := reasonUnknown.FindStringSubmatch(reason); sm != nil {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if k := root.Content[i]; quoted(k.Value) == sm[1] {
				return k.Line, k.Column, ""
			}
		}
		return 0, 0, ""
	}
	sm := reasonPath.FindStringSubmatch(reason)
	if sm == nil {
		return 0, 0, ""
	}
	key, node := entry(root, func(k string) bool { return k == sm[1] })
	if key == nil {
		return 0, 0, ""
	}
	line, col, field = key.Line, key.Column, sm[1]
	if sm[2] != "" {
		// The path goes into the field: follow it as far as the value has it.
		for _, step := range pathStep.FindAllStringSubmatch(sm[2], -1) {
			switch {
			case step[1] != "" && node.Kind == yaml.SequenceNode:
				i, _ := strconv.Atoi(step[1])
				if i >= len(node.Content) {
					return line, col, sm[1] + sm[2]
				}
				node = node.Content[i]
				line, col = node.Line, node.Column
			case step[2] != "" && node.Kind == yaml.MappingNode:
				k, v := entry(node, func(k string) bool { return quoted(k) == step[2] })
				if k == nil {
					return line, col, sm[1] + sm[2]
				}
				node, line, col = v, k.Line, k.Column
			default:
				return line, col, sm[1] + sm[2]
			}
		}
		return line, col, sm[1] + sm[2]
	}
	// A refusal of one item of a list or key of a mapping quotes it
	// ("transitiveTagKeys names 'tema'", "sessionTags key 'aws:x'"): the
	// item quoted first is at fault, and of two equal items the second,
	// which repeats the first.
	rest := reason[len(sm[0]):]
	at, best := len(rest), -1
	step := 1
	if node.Kind == yaml.MappingNode {
		step = 2
	} else if node.Kind != yaml.SequenceNode {
		return line, col, field
	}
	for i := 0; i < len(node.Content); i += step {
		c := node.Content[i]
		if c.Kind != yaml.ScalarNode {
			continue
		}
		if j := strings.Index(rest, quoted(c.Value)); j >= 0 && j <= at {
			at, best = j, i
		}
	}
	if best < 0 {
		return line, col, field
	}
	c := node.Content[best]
	if step == 2 {
		return c.Line, c.Column, field + "[" + quoted(c.Value) + "]"
	}
	return c.Line, c.Column, field + "[" + strconv.Itoa(best) + "]"
}

// entry returns the key and value nodes of the first entry of mapping n
// whose key matches.
func entry(n *yaml.Node, match func(string) bool) (key, value *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if match(n.Content[i].Value) {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// quoted is s as the library quotes tenant text in its messages, without
// the note of the length that follows a cut value.
func quoted(s string) string {
	q := quote.Tenant(s)
	return q[:strings.LastIndexByte(q, '\'')+1]
}

// splitReason splits a refusal of the library, "<what is wrong>: <what to
// do>", at its first ": " outside quoted tenant text and brackets. ok is
// false when it has none.
func splitReason(reason string) (problem, fix string, ok bool) {
	depth, inQuote := 0, false
	for i := 0; i < len(reason); i++ {
		c := reason[i]
		switch {
		case inQuote && c == '\\':
			i++ // an escaped quote or backslash
		case inQuote:
			inQuote = c != '\''
		case c == '\'' && (i == 0 || strings.IndexByte(" ([{=,", reason[i-1]) >= 0):
			// A quote opens tenant text after a blank or bracket; in a
			// word it is an apostrophe ("the role's").
			inQuote = true
		case c == '(' || c == '[' || c == '{':
			depth++
		case (c == ')' || c == ']' || c == '}') && depth > 0:
			depth--
		case c == ':' && depth == 0 && i+1 < len(reason) && reason[i+1] == ' ':
			return reason[:i], reason[i+2:], true
		}
	}
	return reason, "", false
}
