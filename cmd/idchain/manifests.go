package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

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
	// templates are where every '{{' is, found when first needed.
	templates []position
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

// at returns the line and column (in characters) of byte offset i.
func (t *sourceText) at(i int) position {
	line := strings.Count(t.src[:i], "\n") + 1
	start := strings.LastIndexByte(t.src[:i], '\n') + 1
	return position{line, utf8.RuneCountInString(t.src[start:i]) + 1}
}

// hasTemplates reports whether the text has a '{{' anywhere.
func (t *sourceText) hasTemplates() bool {
	if t.templates == nil {
		t.firstTemplate(0, 0)
	}
	return len(t.templates) > 0
}

// firstTemplate returns where the first '{{' between lines from and to
// (inclusive) is, as a Go template (Helm's) opens an action.
func (t *sourceText) firstTemplate(from, to int) (position, bool) {
	if t.templates == nil {
		t.templates = []position{}
		line, lineStart := 1, 0
		for i := 0; ; {
			j := strings.Index(t.src[i:], "{{")
			if j < 0 {
				break
			}
			j += i
			line += strings.Count(t.src[i:j], "\n")
			if k := strings.LastIndexByte(t.src[i:j], '\n'); k >= 0 {
				lineStart = i + k + 1
			}
			t.templates = append(t.templates, position{line, utf8.RuneCountInString(t.src[lineStart:j]) + 1})
			i = j + 2
		}
	}
	for _, at := range t.templates {
		if at.line > to {
			break
		}
		if at.line >= from {
			return at, true
		}
	}
	return position{}, false
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
	// excluded counts the paths --exclude and .idchainignore excluded.
	excluded int
	// notes are what lint did not read, and why.
	notes []lintNote
	// order numbers the files as read, to report findings in that order.
	order           map[string]int
	serviceAccounts []*manifestSA
	// each, when set, is given every ServiceAccount as it is read, in
	// place of serviceAccounts.
	each     func(*manifestSA)
	problems []manifestProblem
}

// readManifests reads YAML files, directories and "-" for stdin, as
// readManifestsExcept does without exclusions.
func readManifests(paths []string, stdin io.Reader) (*manifests, error) {
	return readManifestsExcept(paths, stdin, nil)
}

// readManifestsExcept reads YAML files, directories (recursively, *.yaml
// and *.yml, skipping hidden directories such as .git) and "-" for stdin.
// It does not read what excludes (gitignore-like globs) or the
// .idchainignore at the root of a directory it is given exclude, nor the
// templates of a Helm chart (the templates directory next to a
// Chart.yaml), which are Go templates, not YAML: a note says how many it
// skipped. An error is returned only when a path cannot be read at all,
// or a pattern is not valid.
func readManifestsExcept(paths []string, stdin io.Reader, excludes []string) (*manifests, error) {
	return readEach(paths, stdin, excludes, nil)
}

// readEach is readManifestsExcept giving each ServiceAccount to each as it
// is read, when not nil, instead of keeping them all.
func readEach(paths []string, stdin io.Reader, excludes []string, each func(*manifestSA)) (*manifests, error) {
	m := &manifests{order: map[string]int{}, each: each}
	flagRules, err := parseIgnoreRules(excludes, "--exclude")
	if err != nil {
		return nil, err
	}
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
			if flagRules.excludes(displayPath(p), false) {
				m.excluded++
				continue
			}
			if err := m.parseFile(p); err != nil {
				return nil, err
			}
			continue
		}
		rootRules, err := readIgnoreFile(filepath.Join(p, ignoreFileName))
		if err != nil {
			return nil, err
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(p, path)
			rel = filepath.ToSlash(rel)
			if path != p && (rootRules.excludes(rel, d.IsDir()) || flagRules.excludes(rel, d.IsDir()) ||
				flagRules.excludes(displayPath(path), d.IsDir())) {
				m.excluded++
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			switch {
			case d.IsDir() && path != p && strings.HasPrefix(d.Name(), "."):
				return filepath.SkipDir
			case d.IsDir() && isHelmTemplates(path):
				return m.skipHelmTemplates(path)
			case d.IsDir():
				return nil
			}
			if isYAMLFile(path) {
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

func isYAMLFile(path string) bool {
	ext := filepath.Ext(path)
	return ext == ".yaml" || ext == ".yml"
}

// isHelmTemplates reports whether dir is the templates directory of a Helm
// chart: named templates, next to a Chart.yaml.
func isHelmTemplates(dir string) bool {
	if filepath.Base(dir) != "templates" {
		return false
	}
	info, err := os.Stat(filepath.Join(filepath.Dir(dir), "Chart.yaml"))
	return err == nil && !info.IsDir()
}

// skipHelmTemplates notes the YAML files under the templates directory of
// a chart, which lint does not read, and skips the directory.
func (m *manifests) skipHelmTemplates(dir string) error {
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && isYAMLFile(path) {
			n++
		}
		return err
	})
	if err != nil {
		return err
	}
	if n > 0 {
		chart := displayPath(filepath.Dir(dir))
		m.notes = append(m.notes, lintNote{Path: chart, Files: n,
			Note: fmt.Sprintf("skipped %s under %s: lint the rendered output of `helm template`",
				plural(n, "Helm template"), chart)})
	}
	return filepath.SkipDir
}

// displayPath is path as a person typed it: cleaned, with slashes.
func displayPath(path string) string {
	return filepath.ToSlash(filepath.Clean(path))
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
			if p, ok := notText(file, text); ok {
				// yaml.v3's reader refuses the byte without saying where.
				m.problems = append(m.problems, p)
				return
			}
			msg, line, col := err.Error(), 0, 0
			if sm := yamlErrorLine.FindStringSubmatch(msg); sm != nil {
				line, _ = strconv.Atoi(sm[1])
				msg = strings.TrimPrefix(msg, sm[0])
				// yaml.v3 names the line only: point at its text.
				col = text.textColumn(line)
			}
			msg = strings.TrimPrefix(msg, "yaml: ")
			if at, ok := text.firstTemplate(1, math.MaxInt); ok {
				// A Go template, not YAML: the parser's message would
				// only mislead.
				where := ""
				if line > 0 {
					where = fmt.Sprintf(" at line %d", line)
				}
				m.problems = append(m.problems, manifestProblem{file: file, line: at.line, col: at.col, rule: "helm-template",
					problem: fmt.Sprintf("this file is a Helm (Go) template, not YAML: '{{' at line %d, column %d "+
						"(the YAML parser stops%s: %s)", at.line, at.col, where, msg),
					fix: helmTemplateFix})
				return
			}
			m.problems = append(m.problems, manifestProblem{file: file, line: line, col: col, rule: "invalid-yaml",
				problem: "invalid YAML: " + msg,
				fix:     "fix the YAML syntax; documents after this one were not read"})
			return
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue // an empty document, or not an object
		}
		m.addObject(file, text, doc.Content[0], 0)
	}
}

// maxListDepth bounds Lists of Lists.
const maxListDepth = 8

// addObject adds the ServiceAccounts of the object root: itself, or the
// items of a List, which is what `kubectl get -o yaml` prints for more
// than one object, and of a ServiceAccountList, what the API returns.
func (m *manifests) addObject(file string, text *sourceText, root *yaml.Node, depth int) {
	if root.Kind != yaml.MappingNode || scalar(mapValue(root, "apiVersion")) != "v1" {
		return
	}
	switch scalar(mapValue(root, "kind")) {
	case "ServiceAccount":
		m.addServiceAccount(file, text, root)
	case "List", "ServiceAccountList":
		items := mapValue(root, "items")
		if items == nil || items.Kind != yaml.SequenceNode || depth == maxListDepth {
			return
		}
		typed := scalar(mapValue(root, "kind")) == "ServiceAccountList"
		for _, item := range items.Content {
			if typed && item.Kind == yaml.MappingNode && mapValue(item, "kind") == nil && mapValue(item, "apiVersion") == nil {
				// The API lists the items of a typed list without their
				// kind.
				m.addServiceAccount(file, text, item)
				continue
			}
			m.addObject(file, text, item, depth+1)
		}
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
			if !isMergeKey(k) && v.Kind != yaml.ScalarNode && v.Kind != yaml.AliasNode {
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

	// A template's '{{ }}' within the ServiceAccount.
	var tmpl position
	templated := false
	if text.hasTemplates() {
		tmpl, templated = text.firstTemplate(root.Line, lastLine(root))
	}
	templateProblem := func() {
		m.problems = append(m.problems, manifestProblem{file: file, line: tmpl.line, col: tmpl.col, namespace: ns,
			name: name, rule: "helm-template",
			problem: fmt.Sprintf("this ServiceAccount is a Helm (Go) template: '{{' at line %d, column %d is filled in "+
				"when helm renders it, so lint cannot check what it will be", tmpl.line, tmpl.col),
			fix: helmTemplateFix})
	}

	msa := &manifestSA{file: file, text: text, line: root.Line, col: root.Column}
	if err := decodeServiceAccount(root, &msa.sa); err != nil {
		if templated {
			templateProblem()
			return
		}
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
	if templated && readsTemplate(&msa.sa) {
		templateProblem()
		return
	}
	if ann != nil {
		entries, _ := mergedEntries(ann)
		msa.annotations = make([]annotationAt, len(entries)/2)
		for i := range msa.annotations {
			k, v := entries[2*i], entries[2*i+1]
			msa.annotations[i] = annotationAt{name: k.Value, key: position{k.Line, k.Column},
				value: position{v.Line, v.Column}, literal: v.Kind == yaml.ScalarNode && v.Style&yaml.LiteralStyle != 0}
		}
	}
	if m.each != nil {
		m.each(msa)
		return
	}
	m.serviceAccounts = append(m.serviceAccounts, msa)
}

// helmTemplateFix is what to do about a Helm template lint was given.
const helmTemplateFix = "lint what helm renders: helm template RELEASE CHART | idchain lint -; " +
	"or exclude the file (--exclude or .idchainignore)"

// readsTemplate reports whether a template is in what lint reads of sa:
// its name, namespace, and the keys and values of the annotations.
// A template in another annotation's value, a label or a field is not
// lint's business.
func readsTemplate(sa *corev1.ServiceAccount) bool {
	if strings.Contains(sa.Name, "{{") || strings.Contains(sa.Namespace, "{{") {
		return true
	}
	for k, v := range sa.Annotations {
		if strings.Contains(k, "{{") || strings.Contains(v, "{{") && readAnnotation(k) {
			return true
		}
	}
	return false
}

// lastLine returns the last line of the YAML node n.
func lastLine(n *yaml.Node) int {
	last := n.Line
	if n.Kind == yaml.ScalarNode && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		last += strings.Count(n.Value, "\n")
	}
	for _, c := range n.Content {
		last = max(last, lastLine(c))
	}
	return last
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

// notText finds the first byte that makes text something other than YAML
// text: a NUL or a byte that is not UTF-8, which make it a binary file, or
// a control character YAML does not allow. UTF-16 and UTF-32 with a byte
// order mark are YAML's to read.
func notText(file string, text *sourceText) (manifestProblem, bool) {
	src := text.src
	if strings.HasPrefix(src, "\xff\xfe") || strings.HasPrefix(src, "\xfe\xff") {
		return manifestProblem{}, false
	}
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		var problem, tail string
		switch {
		case r == 0:
			problem = "a NUL byte"
		case r == utf8.RuneError && size == 1:
			problem, tail = fmt.Sprintf("byte 0x%02x", src[i]), " is not UTF-8"
		case !yamlPrintable(r):
			at := text.at(i)
			return manifestProblem{file: file, line: at.line, col: at.col, rule: "invalid-yaml",
				problem: fmt.Sprintf("invalid YAML: control character %U at offset %d is not allowed", r, i),
				fix: fmt.Sprintf("remove it, or write it as the escape \\u%04X in a double-quoted string; "+
					"documents after this one were not read", r)}, true
		}
		if problem != "" {
			at := text.at(i)
			return manifestProblem{file: file, line: at.line, col: at.col, rule: "binary-file",
				problem: fmt.Sprintf("not a text file: %s at offset %d (line %d, column %d)%s", problem, i, at.line,
					at.col, tail),
				fix: "lint reads YAML manifests, which are UTF-8 text: exclude the file (--exclude or .idchainignore), " +
					"or save it as UTF-8"}, true
		}
		i += size
	}
	return manifestProblem{}, false
}

// yamlPrintable reports whether YAML allows r in a stream, as yaml.v3's
// reader checks it.
func yamlPrintable(r rune) bool {
	return r == 0x09 || r == 0x0a || r == 0x0d || r >= 0x20 && r <= 0x7e || r == 0x85 ||
		r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff
}
