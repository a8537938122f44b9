package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
)

// manifestSA is a ServiceAccount read from a manifest, with the positions a
// person needs to find what a finding is about.
type manifestSA struct {
	file string
	text *sourceText
	// line and col are where the ServiceAccount's YAML mapping starts.
	line, col int
	sa        corev1.ServiceAccount
	// annotations are where each annotation is written. Positions, not
	// YAML nodes, so that the nodes of a large file are freed as it is
	// read.
	annotations []annotationAt
}

// annotationAt is where an annotation is written.
type annotationAt struct {
	name       string
	key, value position
	// literal is whether the value is a literal block ('key: |'), whose
	// lines are lines of the file.
	literal bool
}

// position is a line and column of a file, both 1-based.
type position struct{ line, col int }

// annotation returns where annotation key is written.
func (m *manifestSA) annotation(key string) (annotationAt, bool) {
	for i := len(m.annotations) - 1; i >= 0; i-- {
		if m.annotations[i].name == key {
			return m.annotations[i], true
		}
	}
	return annotationAt{}, false
}

// at returns where annotation key is written, or where the ServiceAccount
// starts.
func (m *manifestSA) at(key string) position {
	if a, ok := m.annotation(key); ok {
		return a.key
	}
	return position{m.line, m.col}
}

// inValue returns the position of line n (1-based) and column col of the
// value of annotation key, when the value is a literal block ('key: |'),
// whose lines are lines of the file; the position of the annotation
// otherwise (other styles fold or escape lines, so a line of their value
// has no line of its own in the file), or when n is 0. col 0 stands for
// where the text of the value's line starts.
func (m *manifestSA) inValue(key string, n, col int) position {
	a, ok := m.annotation(key)
	if !ok || n == 0 || !a.literal {
		return m.at(key)
	}
	lines := strings.Split(m.sa.Annotations[key], "\n")
	if n > len(lines) {
		return m.at(key)
	}
	valueLine := lines[n-1]
	line := a.value.line + n
	fileLine := m.text.line(line)
	// The block's indentation is what the file's line has before the
	// value's line.
	indent := len(fileLine) - len(valueLine)
	if indent < 0 || fileLine[indent:] != valueLine {
		return position{line, 1}
	}
	if col == 0 {
		col = len(valueLine) - len(strings.TrimLeft(valueLine, " ")) + 1
	}
	return position{line, indent + col}
}

// sourceText is a file's text, with its lines found when first needed.
type sourceText struct {
	src        string
	lineStarts []int
}

// line returns line n (1-based) of the text, without its line break, or
// "" when there is none.
func (t *sourceText) line(n int) string {
	if t == nil {
		return ""
	}
	if t.lineStarts == nil {
		t.lineStarts = make([]int, 1, strings.Count(t.src, "\n")+1)
		for i := 0; i < len(t.src); i++ {
			if t.src[i] == '\n' {
				t.lineStarts = append(t.lineStarts, i+1)
			}
		}
	}
	if n < 1 || n > len(t.lineStarts) {
		return ""
	}
	end := len(t.src)
	if n < len(t.lineStarts) {
		end = t.lineStarts[n] - 1
	}
	return strings.TrimSuffix(t.src[t.lineStarts[n-1]:end], "\r")
}

// textColumn returns the column where the text of line n starts, or 1.
func (t *sourceText) textColumn(n int) int {
	l := t.line(n)
	return len(l) - len(strings.TrimLeft(l, " \t")) + 1
}

// manifestProblem is a document that is not valid YAML or not a valid
// ServiceAccount. Reading goes on with the next file (a YAML syntax error
// ends a file: the decoder cannot resynchronize).
type manifestProblem struct {
	file, namespace, name, annotation string
	line, col                         int
	// rule is invalid-yaml or invalid-manifest, as lint reports it.
	rule, problem, fix string
}

// manifests is what readManifests found.
type manifests struct {
	files int
	// order numbers the files as read, to report findings in that order.
	order           map[string]int
	serviceAccounts []*manifestSA
	problems        []manifestProblem
}

// readManifests reads YAML files, directories (recursively, *.yaml and
// *.yml, skipping hidden directories such as .git) and "-" for stdin. An
// error is returned only when a path cannot be read at all.
func readManifests(paths []string, stdin io.Reader) (*manifests, error) {
	m := &manifests{order: map[string]int{}}
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("failed to read stdin: %w", err)
			}
			m.parse("<stdin>", data)
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("failed to read '%s': %w", p, errors.Unwrap(err))
		}
		if !info.IsDir() {
			if err := m.parseFile(p); err != nil {
				return nil, err
			}
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case d.IsDir() && path != p && strings.HasPrefix(d.Name(), "."):
				return filepath.SkipDir
			case d.IsDir():
				return nil
			}
			if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
				return m.parseFile(path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("failed to read '%s': %w", p, err)
		}
	}
	return m, nil
}

func (m *manifests) parseFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("failed to read '%s': %w", path, errors.Unwrap(err))
	}
	m.parse(path, data)
	return nil
}

// yamlErrorLine finds the line number in a YAML decoder message.
var yamlErrorLine = regexp.MustCompile(`^yaml: line (\d+): `)

func (m *manifests) parse(file string, data []byte) {
	m.files++
	if m.order == nil {
		m.order = map[string]int{}
	}
	m.order[file] = m.files
	text := &sourceText{src: string(data)}
	docs := newDocStream(text.src)
	docs.reuse = true // nothing keeps a node past its document
	for {
		doc, err := docs.next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			msg, line, col := err.Error(), 0, 0
			if sm := yamlErrorLine.FindStringSubmatch(msg); sm != nil {
				line, _ = strconv.Atoi(sm[1])
				msg = strings.TrimPrefix(msg, sm[0])
				// yaml.v3 names the line only: point at its text.
				col = text.textColumn(line)
			}
			m.problems = append(m.problems, manifestProblem{file: file, line: line, col: col, rule: "invalid-yaml",
				problem: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: "),
				fix:     "fix the YAML syntax; documents after this one were not read"})
			return
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue // an empty document, or not an object
		}
		root := doc.Content[0]
		if scalar(mapValue(root, "kind")) != "ServiceAccount" || scalar(mapValue(root, "apiVersion")) != "v1" {
			continue
		}
		m.addServiceAccount(file, text, root)
	}
}

// addServiceAccount decodes a ServiceAccount document strictly, as the
// API server validates it, and records where its annotations are written.
func (m *manifests) addServiceAccount(file string, text *sourceText, root *yaml.Node) {
	meta := mapValue(root, "metadata")
	ns, name := scalar(mapValue(meta, "namespace")), scalar(mapValue(meta, "name"))
	problem := func(at *yaml.Node, key, msg, fix string) {
		m.problems = append(m.problems, manifestProblem{file: file, line: at.Line, col: at.Column, namespace: ns,
			name: name, annotation: key, rule: "invalid-manifest", problem: msg, fix: fix})
	}

	ann := mapValue(meta, "annotations")
	if ann != nil && ann.Kind == yaml.MappingNode {
		ok := true
		for i := 0; i+1 < len(ann.Content); i += 2 {
			k, v := ann.Content[i], ann.Content[i+1]
			if v.Kind != yaml.ScalarNode && v.Kind != yaml.AliasNode {
				ok = false
				problem(k, k.Value, "the annotation value is a YAML "+kindName(v)+", but annotation values are strings",
					"write the value as a block string: put '|' after the key and indent the fields under it")
			}
		}
		if !ok {
			return
		}
	} else {
		ann = nil
	}

	msa := &manifestSA{file: file, text: text, line: root.Line, col: root.Column}
	if err := decodeServiceAccount(root, &msa.sa); err != nil {
		key := ""
		if ann != nil {
			for i := 0; i+1 < len(ann.Content); i += 2 {
				if ann.Content[i] == err.node || ann.Content[i+1] == err.node {
					key = ann.Content[i].Value
				}
			}
		}
		problem(err.node, key, err.problem, err.fix)
		return
	}
	if ann != nil {
		msa.annotations = make([]annotationAt, len(ann.Content)/2)
		for i := range msa.annotations {
			k, v := ann.Content[2*i], ann.Content[2*i+1]
			msa.annotations[i] = annotationAt{name: k.Value, key: position{k.Line, k.Column},
				value: position{v.Line, v.Column}, literal: v.Kind == yaml.ScalarNode && v.Style&yaml.LiteralStyle != 0}
		}
	}
	m.serviceAccounts = append(m.serviceAccounts, msa)
}

// mapValue returns the value of key in mapping node n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// scalar returns the value of a scalar node, or "".
func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}
