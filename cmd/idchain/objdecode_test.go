package main

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// apiServer decodes a ServiceAccount manifest as `kubectl apply
// --validate=strict` and the API server do: YAML to JSON by
// sigs.k8s.io/yaml's rules (YAML 1.1), then strict JSON decoding (no
// unknown or duplicate field, names case-sensitive).
func apiServer(t testing.TB, doc string) (*corev1.ServiceAccount, error) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	s := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	var sa corev1.ServiceAccount
	_, _, err := s.Decode([]byte(doc), nil, &sa)
	return &sa, err
}

// ours decodes the first document of doc as lint does.
func ours(t testing.TB, doc string) (*corev1.ServiceAccount, *fieldError, bool) {
	t.Helper()
	n, err := newDocStream(doc).next()
	if errors.Is(err, io.EOF) || err != nil || len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
		return nil, nil, false
	}
	var sa corev1.ServiceAccount
	return &sa, decodeServiceAccount(n.Content[0], &sa), true
}

const saHead = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: team-a\n"

// decodeCases are manifests at the edges of what the API server accepts.
var decodeCases = []string{
	saHead,
	saHead + "  annotations:\n    a: '1'\n    b: \"true\"\n    c: |\n      x\n",
	saHead + "  annotations:\n    eks.amazonaws.com/role-arn: 12345\n",
	saHead + "  annotations:\n    a: yes\n",
	saHead + "  annotations:\n    a: 1.5\n",
	saHead + "  annotations:\n    a: 0x1F\n",
	saHead + "  annotations:\n    a: 2026-01-02\n",
	saHead + "  annotations:\n    a:\n",
	saHead + "  annotations:\n    a: ~\n",
	saHead + "  annotations:\n    a: .inf\n",
	saHead + "  annotations:\n    1: x\n",
	saHead + "  annotations:\n    true: x\n",
	saHead + "  annotations:\n    a: x\n    a: y\n",
	saHead + "  annotations:\n    a: [x]\n",
	saHead + "  annotations: x\n",
	saHead + "  annotations: ~\n",
	saHead + "  labels:\n    a: b\n  annotaions:\n    a: b\n",
	saHead + "  Name: x\n",
	saHead + "  name: y\n",
	saHead + "  generation: 3\n",
	saHead + "  generation: '3'\n",
	saHead + "  generation: 1.5\n",
	saHead + "  generation: 1e3\n",
	saHead + "  creationTimestamp: null\n",
	saHead + "  creationTimestamp: \"2026-01-02T03:04:05Z\"\n",
	saHead + "  creationTimestamp: 2026-01-02T03:04:05Z\n",
	saHead + "  creationTimestamp: yesterday\n",
	saHead + "  uid: 0f6c2f4e-1111-4111-8111-111111111111\n  resourceVersion: \"1234\"\n",
	saHead + "  resourceVersion: 1234\n",
	saHead + "  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: x\n    uid: y\n    controller: true\n",
	saHead + "  ownerReferences:\n  - apiVersion: v1\n    controller: \"true\"\n",
	saHead + "  finalizers: [a, b]\n",
	saHead + "  finalizers: a\n",
	saHead + "  managedFields:\n  - manager: kubectl\n    operation: Update\n    fieldsType: FieldsV1\n    fieldsV1:\n      f:metadata:\n        f:annotations: {}\n",
	saHead + "secrets:\n- name: token\nimagePullSecrets:\n- name: pull\n",
	saHead + "secrets: token\n",
	saHead + "automountServiceAccountToken: false\n",
	saHead + "automountServiceAccountToken: yes\n",
	saHead + "automountServiceAccountToken: off\n",
	saHead + "automountServiceAccountToken: \"false\"\n",
	saHead + "automountServiceAccountToken: 0\n",
	saHead + "status: {}\n",
	saHead + "spec:\n  x: 1\n",
	saHead + "kind: ServiceAccount\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata: x\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata: ~\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: 123\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: true\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: on\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: &n app\n  namespace: *n\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata: &m\n  name: app\nsecrets:\n- name: *m\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app, annotations: {a: 1}}\n",
	// Merge keys.
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  <<: {name: app}\n  namespace: team-a\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: mine\n  <<: {name: app}\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  <<: {name: app}\n  name: mine\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  <<: [{name: a}, {name: b, namespace: c}]\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  <<: {nam: app}\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  <<: {name: 5}\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  <<: x\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n  <<: {name: b}\n  name: c\n",
	"x: &base\n  team: a\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  labels:\n    <<: *base\n    app: web\n",
	"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  annotations:\n    '<<': x\n",
}

// TestDecodeAgreesWithTheAPIServer: lint refuses a ServiceAccount manifest
// exactly when kubectl and the API server would, and reads the same
// object from one they accept.
func TestDecodeAgreesWithTheAPIServer(t *testing.T) {
	t.Parallel()
	for _, doc := range decodeCases {
		t.Run(strings.ReplaceAll(strings.TrimPrefix(doc, saHead), "\n", "⏎"), func(t *testing.T) {
			t.Parallel()
			checkDecode(t, doc)
		})
	}
}

func checkDecode(t *testing.T, doc string) {
	t.Helper()
	got, ferr, ok := ours(t, doc)
	if !ok {
		return
	}
	want, err := apiServer(t, doc)
	if (ferr == nil) != (err == nil) {
		t.Fatalf("lint says %v; the API server says %v\n%s", ferr, err, doc)
	}
	if err != nil {
		g := NewWithT(t)
		g.Expect(ferr.problem+" "+ferr.fix).NotTo(ContainSubstring("Go struct"), "Go's words")
		g.Expect(ferr.problem+" "+ferr.fix).NotTo(ContainSubstring("json:"), "Go's words")
		g.Expect(ferr.node).NotTo(BeNil())
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("lint read %#v\nthe API server %#v\n%s", got, want, doc)
	}
}

// FuzzDecodeServiceAccount: on any ServiceAccount manifest, lint and the
// API server agree.
func FuzzDecodeServiceAccount(f *testing.F) {
	for _, c := range decodeCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		n, err := newDocStream(doc).next()
		if err != nil || len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode ||
			scalar(mapValue(n.Content[0], "kind")) != "ServiceAccount" ||
			scalar(mapValue(n.Content[0], "apiVersion")) != "v1" {
			return // not what lint decodes
		}
		checkDecode(t, doc)
	})
}

func (e *fieldError) Error() string { return e.problem + ": " + e.fix }
