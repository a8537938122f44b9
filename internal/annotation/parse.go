package annotation

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/identitychain/auth/internal/quote"
)

// source is what parse reads, as its errors name it.
type source struct {
	name  string // "the value"
	empty string // what to do when it holds only comments
}

var (
	annotationValue = source{name: "the value", empty: "remove the annotation or set its fields"}
	operatorFile    = source{name: "the file", empty: "write its fields"}
)

// parse parses value, which prescan accepted, into the root node of its
// only document and refuses every construct whose meaning YAML readers
// disagree on or that could make decoding cost more than parsing: a second
// document, anchors, aliases, tags and merge keys. yaml.v3 parses into nodes
// without expanding aliases, so nothing is amplified before this refusal.
func parse(value string, src source) (*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(value))
	var doc yaml.Node
	switch err := decodeNode(dec, &doc); {
	case errors.Is(err, io.EOF) || err == nil && len(doc.Content) == 0:
		return nil, &Error{Reason: src.name + " holds only comments: " + src.empty}
	case err != nil:
		return nil, syntaxError(err, src)
	}
	var more yaml.Node
	if err := decodeNode(dec, &more); !errors.Is(err, io.EOF) {
		// A second document is ignored by some readers and not others.
		return nil, &Error{Line: more.Line, Reason: src.name + " holds more than one YAML document: " +
			"keep one, with no '---' or '...' line after it"}
	}
	root := doc.Content[0]
	if err := check(root); err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Line: root.Line, Reason: src.name + " must be a YAML mapping of fields, e.g. 'field: value'"}
	}
	return root, nil
}

// decodeNode decodes the next document of dec into n. yaml.v3 reports
// errors by panicking with its own type and recovers them; any other panic
// of the parser on hostile input becomes an error here rather than a crash
// of the controller.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: internal error: %v", r)
		}
	}()
	return dec.Decode(n)
}

// syntaxError rewords a parser error. yaml.v3's messages are fixed English
// but for a few that embed input (an unknown alias name), so only short
// printable ones are kept, behind a line number.
func syntaxError(err error, src source) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d: ", &line); scanErr != nil {
		line = 0
	}
	switch {
	case strings.Contains(msg, "unknown anchor"):
		return &Error{Reason: "anchors and aliases are not allowed: write each value out in full"}
	case strings.Contains(msg, "found character that cannot start any token"):
		msg += " (tabs cannot indent YAML and '@' or '`' cannot start a plain value: indent with spaces, quote the value)"
	case len(msg) > 200 || strings.IndexFunc(msg, func(r rune) bool { return r < ' ' || r > '~' }) >= 0:
		msg = "its syntax is invalid"
	}
	return &Error{Line: line, Reason: src.name + " is not valid YAML: " + msg}
}

// check walks the tree for constructs the subset refuses.
func check(n *yaml.Node) error {
	at := func(format string, args ...any) error {
		return &Error{Line: n.Line, Reason: fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}
	}
	switch {
	case n.Kind == yaml.AliasNode:
		return at("anchors and aliases are not allowed (%s): write each value out in full", quote.Tenant("*"+n.Value))
	case n.Anchor != "":
		return at("anchors and aliases are not allowed (%s): write each value out in full", quote.Tenant("&"+n.Anchor))
	case n.Style&yaml.TaggedStyle != 0:
		return at("tags are not allowed (%s): remove it and write the plain value", quote.Tenant(n.Tag))
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 && c.Kind == yaml.ScalarNode && isPlain(c) && c.Value == "<<" {
			// yaml.v3 and YAML 1.1 merge another mapping in; YAML 1.2
			// reads a key named '<<'.
			return &Error{Line: c.Line, Reason: fmt.Sprintf(
				"line %d: merge keys ('<<') are not allowed: write the fields out", c.Line)}
		}
		if err := check(c); err != nil {
			return err
		}
	}
	return nil
}
