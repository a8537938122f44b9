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
	sigsyaml "sigs.k8s.io/yaml"
)

// manifestSA is a ServiceAccount read from a manifest, with the positions a
// person needs to find what a finding is about.
type manifestSA struct {
	file string
	// line is the first line of the ServiceAccount's YAML document.
	line int
	sa   corev1.ServiceAccount
	// annotationLines maps an annotation key to the line it is written on.
	annotationLines map[string]int
	// blockLines maps the key of an annotation written as a literal block
	// ('key: |') to the line of its '|': line n of the value is the file's
	// line blockLines[key]+n. Other styles fold or escape lines, so a line
	// of their value has no line of its own in the file.
	blockLines map[string]int
}

// lineOf returns the line of annotation key, or of the document.
func (m manifestSA) lineOf(key string) int {
	if l, ok := m.annotationLines[key]; ok {
		return l
	}
	return m.line
}

// lineInValue returns the file line of line n (1-based) of the value of
// annotation key, or the line of the annotation when the value's lines are
// not the file's or n is 0.
func (m manifestSA) lineInValue(key string, n int) int {
	if l, ok := m.blockLines[key]; ok && n > 0 {
		return l + n
	}
	return m.lineOf(key)
}

// manifestProblem is a document that is not valid YAML or not a valid
// ServiceAccount. Reading goes on with the next file (a YAML syntax error
// ends a file: the decoder cannot resynchronize).
type manifestProblem struct {
	file, namespace, name, annotation string
	line                              int
	// rule is invalid-yaml or invalid-manifest, as lint reports it.
	rule, problem, fix string
}

// manifests is what readManifests found.
type manifests struct {
	files int
	// order numbers the files as read, to report findings in that order.
	order           map[string]int
	serviceAccounts []manifestSA
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
	docs := newDocStream(string(data))
	for {
		doc, err := docs.next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			msg, line := err.Error(), 0
			if sm := yamlErrorLine.FindStringSubmatch(msg); sm != nil {
				line, _ = strconv.Atoi(sm[1])
				msg = strings.TrimPrefix(msg, sm[0])
			}
			m.problems = append(m.problems, manifestProblem{file: file, line: line, rule: "invalid-yaml",
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
		m.addServiceAccount(file, root)
	}
}

// addServiceAccount decodes a ServiceAccount document strictly, as the
// API server validates it, and records where its annotations are written.
func (m *manifests) addServiceAccount(file string, root *yaml.Node) {
	meta := mapValue(root, "metadata")
	ns, name := scalar(mapValue(meta, "namespace")), scalar(mapValue(meta, "name"))
	problem := func(line int, key, msg, fix string) {
		m.problems = append(m.problems, manifestProblem{file: file, line: line, namespace: ns, name: name,
			annotation: key, rule: "invalid-manifest", problem: msg, fix: fix})
	}

	lines, blocks := map[string]int{}, map[string]int{}
	if ann := mapValue(meta, "annotations"); ann != nil && ann.Kind == yaml.MappingNode {
		ok := true
		for i := 0; i+1 < len(ann.Content); i += 2 {
			k, v := ann.Content[i], ann.Content[i+1]
			lines[k.Value] = k.Line
			if v.Kind == yaml.ScalarNode && v.Style&yaml.LiteralStyle != 0 {
				blocks[k.Value] = v.Line
			}
			if v.Kind != yaml.ScalarNode {
				ok = false
				problem(k.Line, k.Value, "the annotation value is a YAML "+kindName(v)+", but annotation values are strings",
					"write the value as a block string: put '|' after the key and indent the fields under it")
			}
		}
		if !ok {
			return
		}
	}

	out, err := yaml.Marshal(root)
	if err == nil {
		var sa corev1.ServiceAccount
		if err = sigsyaml.UnmarshalStrict(out, &sa); err == nil {
			m.serviceAccounts = append(m.serviceAccounts, manifestSA{file: file, line: root.Line, sa: sa,
				annotationLines: lines, blockLines: blocks})
			return
		}
	}
	problem(root.Line, "", "invalid ServiceAccount: "+strings.TrimPrefix(err.Error(), "error unmarshaling JSON: while decoding JSON: "),
		"correct the field; the API server would refuse this object")
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
