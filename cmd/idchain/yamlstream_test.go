package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// v3Stream is what yaml.v3 reads from src, document by document, and the
// error it stops at.
func v3Stream(src string) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(src))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, &doc)
	}
}

func fastStream(src string) ([]*yaml.Node, error) {
	s := newDocStream(src)
	var docs []*yaml.Node
	for {
		doc, err := s.next()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, doc)
	}
}

// sameNode reports where a and b differ, as lint reads them: comments
// aside, and a plain scalar's tag by what it resolves to.
func sameNode(a, b *yaml.Node, path string) error {
	switch {
	case a.Kind != b.Kind, a.Style != b.Style, a.Value != b.Value, a.ShortTag() != b.ShortTag(),
		a.Line != b.Line, a.Column != b.Column, a.Anchor != b.Anchor, len(a.Content) != len(b.Content):
		return fmt.Errorf("%s: got kind %v style %v tag %s value %q at %d:%d with %d children, anchor %q; "+
			"yaml.v3 has kind %v style %v tag %s value %q at %d:%d with %d children, anchor %q", path,
			a.Kind, a.Style, a.ShortTag(), a.Value, a.Line, a.Column, len(a.Content), a.Anchor,
			b.Kind, b.Style, b.ShortTag(), b.Value, b.Line, b.Column, len(b.Content), b.Anchor)
	case (a.Alias == nil) != (b.Alias == nil):
		return fmt.Errorf("%s: alias differs", path)
	}
	for i := range a.Content {
		if err := sameNode(a.Content[i], b.Content[i], fmt.Sprintf("%s/%d", path, i)); err != nil {
			return err
		}
	}
	return nil
}

// nonEmpty drops the documents without content, which lint skips.
func nonEmpty(docs []*yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for _, d := range docs {
		if len(d.Content) > 0 {
			out = append(out, d)
		}
	}
	return out
}

// checkStream fails unless docStream reads src as yaml.v3 does: the same
// documents, and an error where yaml.v3 stops, in the same words but for
// the one case its doc comment names. yaml.v3 reads ahead: it may stop at
// an error in the first lines of a document before it returns the one
// before, which docStream returns.
func checkStream(t *testing.T, src string) {
	t.Helper()
	want, wantErr := v3Stream(src)
	got, gotErr := fastStream(src)
	want, got = nonEmpty(want), nonEmpty(got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("error %v, yaml.v3 %v\n%s", gotErr, wantErr, src)
	}
	if wantErr != nil && !strings.Contains(src, "\n---") {
		got, want := gotErr.Error(), wantErr.Error()
		if !yamlErrLine.MatchString(want) {
			// yaml.v3 leaves out line 1; docStream says it.
			got = yamlErrLine.ReplaceAllString(got, "yaml: ")
		}
		if got != want {
			t.Fatalf("error %q, yaml.v3 %q\n%s", gotErr, wantErr, src)
		}
	}
	if len(got) != len(want) && (wantErr == nil || len(got) < len(want)) {
		t.Fatalf("%d documents, yaml.v3 %d\n%s", len(got), len(want), src)
	}
	for i := range want {
		if err := sameNode(got[i], want[i], fmt.Sprintf("doc %d", i)); err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
	}
}

// yamlSeeds are inputs at the edges of the fast path's subset.
var yamlSeeds = []string{
	"a: 1\nb:\n  c: |\n    x\n\n    y\n  d: |-\n    z\n",
	"# c\n---\napiVersion: v1\n---\n---\nkind: List\nitems:\n- a: 1\n  b: 'it''s'\n- \"q\"\n-\n  c: d\n- e\n",
	"a:\n- x\n- y\nb: ~\nc:\nd:   # c\n",
	"a: b: c\n",
	"a: b\n  c\n",
	"a: |\n  x\n b: 1\n",
	"a: |\n\n  x\n",
	"a: |\n  x\n   \n",
	"a: |\n  x",
	"a: |+\n  x\n\n",
	"a: >\n  x\n",
	"a: [1, 2]\nb: {c: d}\n",
	"a: &x 1\nb: *x\n",
	"a: !!str 1\n",
	"- - a\n",
	"a: \"x\\ty\"\n",
	"a: \"\\\"q\\\" \\\\ \\/ \\0\\a\\b\\t\\n\\v\\f\\r\\e\\ \\N\\_\\L\\P \\x41\\u00e9\\U0001F600\"\n",
	"a: \"\\ud800\"\nb: \"\\x4\"\nc: \"\\q\"\nd: \"x\\\n",
	"a: \"{\\\"k\\\": [1, \\\"v\\\"]}\" # json\n",
	"a: 'x\n  y'\n",
	"a: \"x\" y\n",
	"'a': 1\n\"b\": 2\n'c' : 3\n",
	"a:b: c\nd#e: f #g\n",
	"key:value\n",
	"a: 1\n  # c\nb: 2\n",
	"  a: 1\n  b: 2\n",
	"  a: 1\nb: 2\n",
	"a:\n  - x\n  -\n    y: z\n  - |\n    w\nb: 1\n",
	"- a: |\n    x\n  b: 1\n- c\n",
	"- a: |\n  x\n",
	"a: -1\nb: -x\nc: ?x\nd: :x\ne: -\n",
	"a: 1\n...\nb: 2\n",
	"%YAML 1.2\n---\na: 1\n",
	"a: 1\n--- |\n  x\n",
	"--- # c\na: 1\n--- \n",
	"a: [1,\n---\n]\n",
	"a: \"x\n---\ny\"\n",
	"a: x\r\nb: y\r\n",
	"a:\tx\n",
	"a: é\n",
	"\ufeffa: 1\n",
	"<<: {a: 1}\n",
	"a: 1\na: 2\n",
	"? a\n: b\n",
	"a:\n\n  b: 1\n",
	"a: |-\n  x\n\n\nb: 1\n",
	"a: |\n  # not a comment\n  x\n# a comment\n",
}

// FuzzDocStream: whatever the bytes, docStream reads what yaml.v3 reads.
func FuzzDocStream(f *testing.F) {
	for _, s := range yamlSeeds {
		f.Add(s)
	}
	var files []string
	for _, g := range []string{"testdata/*/*/*.yaml", "testdata/*/*.yaml", "demo/*.yaml", "../../testdata/*.yaml"} {
		m, err := filepath.Glob(g)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, m...)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add(string(benchManifest(20)))
	f.Fuzz(func(t *testing.T, src string) {
		checkStream(t, src)
	})
}

// TestDocStreamTakesTheFastPath: what kubectl, kustomize and people write
// is read by the fast path, which is what makes FuzzDocStream's comparison
// meaningful, and BenchmarkLint fast.
func TestDocStreamTakesTheFastPath(t *testing.T) {
	t.Parallel()
	for name, src := range map[string]string{
		"benchmark": string(benchManifest(400)),
		"kubectl get -o yaml": `apiVersion: v1
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata:
    annotations:
      aws.auth.fluxcd.io/assume-role: |
        roleARN: arn:aws:iam::222222222222:role/target
      kubectl.kubernetes.io/last-applied-configuration: |
        {"apiVersion":"v1","kind":"ServiceAccount","metadata":{"annotations":{},"name":"app","namespace":"team-a"}}
    creationTimestamp: "2026-01-02T03:04:05Z"
    name: app
    namespace: team-a
    resourceVersion: "1234"
    uid: 0f6c2f4e-1111-4111-8111-111111111111
  secrets:
  - name: app-token
kind: List
metadata:
  resourceVersion: ""
`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkStream(t, src)
			s := newDocStream(src)
			for {
				if _, err := s.next(); err != nil {
					break
				}
			}
			if s.slow != 0 || s.fast == 0 {
				t.Errorf("%d documents read by the fast path, %d by yaml.v3", s.fast, s.slow)
			}
		})
	}
}
