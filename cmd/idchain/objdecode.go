package main

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/identitychain/auth/internal/quote"
)

// decodeObject decodes a manifest's YAML node into out, a pointer to a
// Kubernetes API type, and refuses what `kubectl apply` and the API server
// refuse, as they read it: kubectl turns YAML into JSON by the rules of
// YAML 1.1 (an unquoted yes, on, 12345 or 1.5 is not text), and the API
// server decodes the JSON strictly (no unknown field, no field set twice,
// field names case-sensitive, each value of its field's type). The refusal
// names the field and points at its node, in a manifest author's words:
// never Go's, such as "cannot unmarshal number into Go struct field".
func decodeObject(n *yaml.Node, out any) *fieldError {
	return decodeValue(n, reflect.ValueOf(out).Elem(), nil)
}

// fieldError is a field of a manifest the API server would refuse.
type fieldError struct {
	node         *yaml.Node
	problem, fix string
}

var (
	timeType    = reflect.TypeFor[metav1.Time]()
	unmarshaler = reflect.TypeFor[json.Unmarshaler]()
)

// viaJSON caches, by type, whether a value of the type decodes itself
// from JSON (metav1.FieldsV1, resource.Quantity...).
var viaJSON sync.Map // reflect.Type → bool

func decodesItself(t reflect.Type) bool {
	if b, ok := viaJSON.Load(t); ok {
		return b.(bool)
	}
	b := t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(unmarshaler)
	viaJSON.Store(t, b)
	return b
}

// isMergeKey reports whether k is YAML's merge key, a plain '<<'.
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0
}

// mergedEntries returns the keys and values of mapping n with its merge
// keys ('<<: *base', '<<: [*a, *b]') expanded as kubectl's strict YAML
// reader (go.yaml.in/yaml/v2) expands them: the merged mappings' entries
// in place, in order. A key set twice, merged or not, stays twice, for the
// caller to refuse as the API server does. Without merge keys it is
// n.Content.
func mergedEntries(n *yaml.Node) ([]*yaml.Node, *fieldError) {
	merges := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			merges = true
			break
		}
	}
	if !merges {
		return n.Content, nil
	}
	var out []*yaml.Node
	var merge func(v *yaml.Node, depth int, list bool) *fieldError
	merge = func(v *yaml.Node, depth int, list bool) *fieldError {
		d := deref(v)
		switch {
		case d.Kind == yaml.MappingNode && depth <= maxListDepth:
			entries, err := mergedEntries(d)
			if err != nil {
				return err
			}
			out = append(out, entries...)
		case d.Kind == yaml.SequenceNode && !list:
			for _, c := range d.Content {
				if err := merge(c, depth+1, true); err != nil {
					return err
				}
			}
		default:
			return &fieldError{v, fmt.Sprintf("the merge key '<<' takes a mapping, an alias of one, or a list of "+
				"them, not %s", describeNode(d, scalarKindOf(d))), "merge a mapping ('<<: *anchor'), or write the fields out"}
		}
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			if err := merge(n.Content[i+1], 0, false); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, n.Content[i], n.Content[i+1])
	}
	return out, nil
}

// deref returns the node an alias ('*a') stands for, or n.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func decodeValue(n *yaml.Node, v reflect.Value, at *fieldPath) *fieldError {
	n = deref(n)
	sk := scalarKindOf(n)
	if sk == scalarNull {
		return nil // JSON null leaves a field unset
	}
	t := v.Type()
	switch {
	case t == timeType:
		return decodeTime(n, sk, v, at)
	case decodesItself(t):
		return decodeJSON(n, v, at)
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return decodeValue(n, v.Elem(), at)
	case reflect.Struct:
		return decodeStruct(n, v, at)
	case reflect.Map:
		return decodeMap(n, v, at)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return &fieldError{n, fmt.Sprintf("%s must be a list, not %s", fieldName(at), describeNode(n, sk)),
				"write each item on its own line, indented under it and starting with '- '"}
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			seg := fieldPath{parent: at, index: i, step: stepIndex}
			if err := decodeValue(c, s.Index(i), &seg); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.String:
		if sk != scalarText {
			return stringError(n, sk, at)
		}
		v.SetString(n.Value)
		return nil
	case reflect.Bool:
		if sk != scalarBool {
			fix := "write true or false"
			if sk == scalarText && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
				fix = "remove the quotes: the API server takes true or false, not text"
			}
			return &fieldError{n, fmt.Sprintf("%s must be true or false, not %s", fieldName(at), describeNode(n, sk)), fix}
		}
		v.SetBool(yaml11Bool(n.Value))
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := yaml11Int(n, sk)
		if !ok || v.OverflowInt(i) {
			return wholeNumberError(n, sk, at)
		}
		v.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, ok := yaml11Int(n, sk)
		if !ok || i < 0 || v.OverflowUint(uint64(i)) {
			return wholeNumberError(n, sk, at)
		}
		v.SetUint(uint64(i))
		return nil
	case reflect.Float32, reflect.Float64:
		f, ok := yaml11Float(n, sk)
		if !ok {
			return &fieldError{n, fmt.Sprintf("%s must be a number, not %s", fieldName(at), describeNode(n, sk)),
				"write a number, without quotes"}
		}
		v.SetFloat(f)
		return nil
	}
	// No ServiceAccount field is of another kind: take the JSON route.
	return decodeJSON(n, v, at)
}

// decodeStruct decodes a mapping into the fields of a struct, by their
// JSON names.
func decodeStruct(n *yaml.Node, v reflect.Value, at *fieldPath) *fieldError {
	if n.Kind != yaml.MappingNode {
		return &fieldError{n, fmt.Sprintf("%s must be a mapping of fields, not %s", fieldName(at), describeNode(n, scalarKindOf(n))),
			"write its fields on the lines after it, indented, as 'field: value'"}
	}
	info := structInfoOf(v.Type())
	return eachEntry(n, at, true, func(name string, k, val *yaml.Node) *fieldError {
		f, ok := info.fields[name]
		if !ok {
			return unknownFieldError(k, name, at, info)
		}
		seg := fieldPath{parent: at, name: name}
		return decodeValue(val, v.FieldByIndex(f), &seg)
	})
}

// decodeMap decodes a mapping into a map with string keys.
func decodeMap(n *yaml.Node, v reflect.Value, at *fieldPath) *fieldError {
	t := v.Type()
	if n.Kind != yaml.MappingNode || t.Key().Kind() != reflect.String {
		return &fieldError{n, fmt.Sprintf("%s must be a mapping, not %s", fieldName(at), describeNode(n, scalarKindOf(n))),
			"write its entries on the lines after it, indented, as 'key: value'"}
	}
	if t == stringMapType {
		return decodeStringMap(n, v, at)
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	err := eachEntry(n, at, false, func(key string, _, val *yaml.Node) *fieldError {
		e := reflect.New(t.Elem()).Elem()
		seg := fieldPath{parent: at, key: key, step: stepKey}
		if err := decodeValue(val, e, &seg); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), e)
		return nil
	})
	if err != nil {
		return err
	}
	v.Set(m)
	return nil
}

// eachEntry calls f with each entry of mapping n, merge keys expanded, in
// order, and refuses a key that is not text or that is set twice. Keys name
// fields when fields is set ("field 'x' is set twice") and map entries
// otherwise (the error gives the entry's path).
func eachEntry(n *yaml.Node, at *fieldPath, fields bool, f func(key string, k, val *yaml.Node) *fieldError) *fieldError {
	var seen keySet
	entries, merr := mergedEntries(n)
	if merr != nil {
		return merr
	}
	for i := 0; i+1 < len(entries); i += 2 {
		k, val := entries[i], entries[i+1]
		key, err := keyText(k, at)
		if err != nil {
			return err
		}
		if prev := seen.add(key, k); prev != nil {
			if fields {
				return twiceError(k, prev, fmt.Sprintf("field %s", quote.Tenant(key)), at)
			}
			seg := fieldPath{parent: at, key: key, step: stepKey}
			return twiceError(k, prev, seg.String(), nil)
		}
		if err := f(key, k, val); err != nil {
			return err
		}
	}
	return nil
}

// keySet finds a key set twice in a mapping: by a scan of the keys so far
// for the few keys of most mappings, with a map beyond.
type keySet struct {
	n     int
	keys  [16]string
	nodes [16]*yaml.Node
	m     map[string]*yaml.Node
}

// add records key, written at k, and returns where it was written before,
// or nil.
func (s *keySet) add(key string, k *yaml.Node) *yaml.Node {
	if s.m != nil {
		if prev, ok := s.m[key]; ok {
			return prev
		}
		s.m[key] = k
		return nil
	}
	if i := slices.Index(s.keys[:s.n], key); i >= 0 {
		return s.nodes[i]
	}
	if s.n == len(s.keys) {
		s.m = make(map[string]*yaml.Node, 4*s.n)
		for i, key := range s.keys {
			s.m[key] = s.nodes[i]
		}
		s.m[key] = k
		return nil
	}
	s.keys[s.n], s.nodes[s.n] = key, k
	s.n++
	return nil
}

var stringMapType = reflect.TypeFor[map[string]string]()

// decodeStringMap is decodeMap for map[string]string, the type of labels
// and annotations, without reflection.
func decodeStringMap(n *yaml.Node, v reflect.Value, at *fieldPath) *fieldError {
	m := make(map[string]string, len(n.Content)/2)
	err := eachEntry(n, at, false, func(key string, _, val *yaml.Node) *fieldError {
		switch sk := scalarKindOf(val); sk {
		case scalarText:
			m[key] = deref(val).Value
		case scalarNull:
			m[key] = ""
		default:
			seg := fieldPath{parent: at, key: key, step: stepKey}
			return stringError(val, sk, &seg)
		}
		return nil
	})
	if err != nil {
		return err
	}
	v.Set(reflect.ValueOf(m))
	return nil
}

// decodeTime decodes a timestamp as metav1.Time reads it: RFC 3339 text.
func decodeTime(n *yaml.Node, sk yamlScalarKind, v reflect.Value, at *fieldPath) *fieldError {
	if sk == scalarText {
		if t, err := time.Parse(time.RFC3339, n.Value); err == nil {
			v.Set(reflect.ValueOf(metav1.NewTime(t.Local())))
			return nil
		}
	}
	return &fieldError{n, fmt.Sprintf("%s must be a time, not %s", fieldName(at), describeNode(n, sk)),
		"write an RFC 3339 time, such as 2026-01-02T03:04:05Z, or remove the field: the API server sets it"}
}

// decodeJSON decodes the value as the API server would, from its JSON.
func decodeJSON(n *yaml.Node, v reflect.Value, at *fieldPath) *fieldError {
	data, ferr := nodeJSON(n, at)
	if ferr != nil {
		return ferr
	}
	if err := json.Unmarshal(data, v.Addr().Interface()); err != nil {
		return &fieldError{n, fmt.Sprintf("%s is not valid", fieldName(at)),
			"correct the value, or remove the field: the API server would refuse it"}
	}
	return nil
}

// nodeJSON is the JSON kubectl sends for n.
func nodeJSON(n *yaml.Node, at *fieldPath) ([]byte, *fieldError) {
	var w jsonWriter
	if err := w.walk(n, at); err != nil {
		return nil, err
	}
	return w.b, nil
}

type jsonWriter struct{ b []byte }

func (w *jsonWriter) walk(n *yaml.Node, at *fieldPath) *fieldError {
	switch n.Kind {
	case yaml.DocumentNode:
		return w.walk(n.Content[0], at)
	case yaml.AliasNode:
		return w.walk(n.Alias, at)
	case yaml.MappingNode:
		entries, merr := mergedEntries(n)
		if merr != nil {
			return merr
		}
		// Keys sorted, as kubectl's JSON is: raw JSON such as FieldsV1
		// keeps its bytes.
		keys := make([]string, len(entries)/2)
		order := make([]int, len(keys))
		for i := range keys {
			k, err := keyText(entries[2*i], at)
			if err != nil {
				return err
			}
			keys[i], order[i] = k, i
		}
		slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
		w.b = append(w.b, '{')
		for j, i := range order {
			if j > 0 {
				w.b = append(w.b, ',')
			}
			kb, _ := json.Marshal(keys[i])
			w.b = append(append(w.b, kb...), ':')
			seg := fieldPath{parent: at, name: keys[i]}
			if err := w.walk(entries[2*i+1], &seg); err != nil {
				return err
			}
		}
		w.b = append(w.b, '}')
	case yaml.SequenceNode:
		w.b = append(w.b, '[')
		for i, c := range n.Content {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			seg := fieldPath{parent: at, index: i, step: stepIndex}
			if err := w.walk(c, &seg); err != nil {
				return err
			}
		}
		w.b = append(w.b, ']')
	default:
		switch sk := scalarKindOf(n); sk {
		case scalarNull:
			w.b = append(w.b, "null"...)
		case scalarBool:
			w.b = strconv.AppendBool(w.b, yaml11Bool(n.Value))
		case scalarInt, scalarFloat:
			f, _ := yaml11Float(n, sk)
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return &fieldError{n, fmt.Sprintf("%s is %s, which JSON cannot carry", fieldName(at), describeNode(n, sk)),
					"quote the value, or write a finite number"}
			}
			if i, ok := yaml11Int(n, sk); ok {
				w.b = strconv.AppendInt(w.b, i, 10)
			} else {
				w.b = strconv.AppendFloat(w.b, f, 'g', -1, 64)
			}
		default:
			sb, _ := json.Marshal(n.Value)
			w.b = append(w.b, sb...)
		}
	}
	return nil
}

// keyText is the text of a mapping key as kubectl sends it: a number or
// boolean key becomes its text.
func keyText(k *yaml.Node, at *fieldPath) (string, *fieldError) {
	k = deref(k)
	if k.Kind != yaml.ScalarNode {
		return "", &fieldError{k, fmt.Sprintf("a key of %s is %s", fieldName(at), describeNode(k, scalarText)),
			"write each key as text, followed by ':'"}
	}
	switch sk := scalarKindOf(k); sk {
	case scalarText:
		return k.Value, nil
	case scalarBool:
		return strconv.FormatBool(yaml11Bool(k.Value)), nil
	case scalarInt:
		if i, ok := yaml11Int(k, sk); ok {
			return strconv.FormatInt(i, 10), nil
		}
	case scalarFloat:
		if f, _ := yaml11Float(k, sk); !math.IsInf(f, 0) && !math.IsNaN(f) {
			return strconv.FormatFloat(f, 'g', -1, 64), nil
		}
	}
	return "", &fieldError{k, fmt.Sprintf("a key of %s is %s", fieldName(at), describeNode(k, scalarKindOf(k))),
		"quote the key"}
}

func stringError(n *yaml.Node, sk yamlScalarKind, at *fieldPath) *fieldError {
	if n.Kind != yaml.ScalarNode {
		return &fieldError{n, fmt.Sprintf("%s must be text, not %s", fieldName(at), describeNode(n, sk)),
			"write the text on one line after the key, or as a block: put '|' after the key and indent the text under it"}
	}
	why := ""
	if sk == scalarBool && !strings.EqualFold(n.Value, "true") && !strings.EqualFold(n.Value, "false") {
		why = " (YAML reads an unquoted " + n.Value + " as a boolean)"
	}
	value := quote.Clean(n.Value, quote.MaxBytes)
	fix := fmt.Sprintf("quote the value: \"%s\"", value)
	switch {
	case at != nil && at.step == stepKey:
		fix = fmt.Sprintf("quote the value: '%s: \"%s\"'", quote.Clean(at.key, quote.MaxBytes), value)
	case at != nil && at.step == stepField:
		fix = fmt.Sprintf("quote the value: '%s: \"%s\"'", at.name, value)
	}
	return &fieldError{n, fmt.Sprintf("%s must be text, not %s%s", fieldName(at), describeNode(n, sk), why), fix}
}

func wholeNumberError(n *yaml.Node, sk yamlScalarKind, at *fieldPath) *fieldError {
	fix := "write a whole number"
	if sk == scalarText && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		fix = "remove the quotes: the API server takes a number, not text"
	}
	return &fieldError{n, fmt.Sprintf("%s must be a whole number, not %s", fieldName(at), describeNode(n, sk)), fix}
}

func twiceError(k, prev *yaml.Node, what string, at *fieldPath) *fieldError {
	if at != nil {
		what += " of " + fieldName(at)
	}
	return &fieldError{k, fmt.Sprintf("%s is set twice (lines %d and %d)", what, prev.Line, k.Line),
		"remove one: the API server refuses a field set twice, and kubectl would keep only the last"}
}

func unknownFieldError(k *yaml.Node, name string, at *fieldPath, info *structInfo) *fieldError {
	in := "in " + fieldName(at)
	if at == nil {
		in = "in a " + info.kind
	}
	problem := fmt.Sprintf("unknown field %s %s", quote.Tenant(name), in)
	for _, known := range info.names {
		if strings.EqualFold(known, name) {
			return &fieldError{k, problem, fmt.Sprintf("did you mean '%s'? field names are case-sensitive", known)}
		}
	}
	best, dist := "", 3
	for _, known := range info.names {
		if d := editDistance(strings.ToLower(name), strings.ToLower(known)); d < dist {
			best, dist = known, d
		}
	}
	if best != "" {
		return &fieldError{k, problem, fmt.Sprintf("did you mean '%s'?", best)}
	}
	if len(info.names) <= 8 {
		return &fieldError{k, problem, "remove it: the API server refuses unknown fields, and " + fieldName(at) +
			" has " + sentence(info.names)}
	}
	return &fieldError{k, problem, "remove it or correct its name: the API server refuses unknown fields"}
}

// fieldPath is the path of a field in an object, such as
// metadata.annotations['a'] or secrets[0].name, made only when an error
// names it: the decoder passes it on the stack.
type fieldPath struct {
	parent *fieldPath
	step   uint8
	name   string // of a field
	key    string // of a map's entry
	index  int    // of a list's item
}

const (
	stepField uint8 = iota
	stepKey
	stepIndex
)

func (p *fieldPath) String() string {
	if p == nil {
		return ""
	}
	parent := p.parent.String()
	switch p.step {
	case stepKey:
		return parent + "[" + quote.Tenant(p.key) + "]"
	case stepIndex:
		return parent + "[" + strconv.Itoa(p.index) + "]"
	}
	if parent == "" {
		return p.name
	}
	return parent + "." + p.name
}

// fieldName names the field at a path for a sentence.
func fieldName(at *fieldPath) string {
	if at == nil {
		return "the object"
	}
	return at.String()
}

// describeNode says what n is, for "must be X, not <describeNode>".
func describeNode(n *yaml.Node, sk yamlScalarKind) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch sk {
	case scalarNull:
		return "null"
	case scalarBool:
		return "the boolean " + n.Value
	case scalarInt, scalarFloat:
		return "the number " + quote.Clean(n.Value, quote.MaxBytes)
	}
	return "the text " + quote.Tenant(n.Value)
}

// structInfo is what decoding needs of a struct type: its fields by JSON
// name, embedded structs without a name inlined, as encoding/json does.
type structInfo struct {
	kind   string // the type's name, for "unknown field 'x' in a ServiceAccount"
	fields map[string][]int
	names  []string // in declaration order
}

var structInfos sync.Map // reflect.Type → *structInfo

func structInfoOf(t reflect.Type) *structInfo {
	if i, ok := structInfos.Load(t); ok {
		return i.(*structInfo)
	}
	info := &structInfo{kind: t.Name(), fields: map[string][]int{}}
	var add func(t reflect.Type, index []int)
	add = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			switch {
			case tag == "-" || !f.IsExported() && !f.Anonymous:
				continue
			case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
				add(f.Type, idx)
				continue
			case name == "":
				name = f.Name
			}
			info.fields[name] = idx
			info.names = append(info.names, name)
		}
	}
	add(t, nil)
	i, _ := structInfos.LoadOrStore(t, info)
	return i.(*structInfo)
}

// yamlScalarKind is what kubectl makes of a YAML scalar.
type yamlScalarKind uint8

const (
	scalarText yamlScalarKind = iota
	scalarNull
	scalarBool
	scalarInt
	scalarFloat
	scalarNone
)

// scalarKindOf resolves a scalar as kubectl does, by the rules of YAML 1.1
// (sigs.k8s.io/yaml, through go.yaml.in/yaml/v2): quoted and block
// scalars are text; a plain one is null, a boolean (true, yes, on, y and
// their opposites, in three casings), a number (12, 0x1F, 0o17, 0b101,
// 1_000, 1.5, 1e3, .inf), or text. A timestamp is text: kubectl sends it
// as written.
func scalarKindOf(n *yaml.Node) yamlScalarKind {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return scalarKindOf(n.Alias)
	}
	if n.Kind != yaml.ScalarNode {
		return scalarNone
	}
	if n.Style&yaml.TaggedStyle != 0 {
		switch n.ShortTag() {
		case "!!null":
			return scalarNull
		case "!!bool":
			return scalarBool
		case "!!int":
			return scalarInt
		case "!!float":
			return scalarFloat
		}
		return scalarText
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return scalarText
	}
	return resolve11(n.Value)
}

// yaml11 are the plain scalars YAML 1.1 gives a meaning by name.
var yaml11 = func() map[string]yamlScalarKind {
	m := map[string]yamlScalarKind{}
	for _, s := range strings.Fields("y Y yes Yes YES true True TRUE on On ON n N no No NO false False FALSE off Off OFF") {
		m[s] = scalarBool
	}
	for _, s := range strings.Fields("~ null Null NULL") {
		m[s] = scalarNull
	}
	m[""] = scalarNull
	for _, s := range strings.Fields(".nan .NaN .NAN .inf .Inf .INF +.inf +.Inf +.INF -.inf -.Inf -.INF") {
		m[s] = scalarFloat
	}
	return m
}()

var yaml11FloatSyntax = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

func resolve11(s string) yamlScalarKind {
	if s == "" {
		return scalarNull
	}
	switch c := s[0]; {
	case strings.IndexByte("yYnNtTfFoO~", c) >= 0:
		if k, ok := yaml11[s]; ok {
			return k
		}
	case c == '.':
		if k, ok := yaml11[s]; ok {
			return k
		}
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return scalarFloat
		}
	case c == '+' || c == '-' || c >= '0' && c <= '9':
		if k, ok := yaml11[s]; ok {
			return k
		}
		if isTimestamp11(s) {
			return scalarText
		}
		plain := strings.ReplaceAll(s, "_", "")
		if _, err := strconv.ParseInt(plain, 0, 64); err == nil {
			return scalarInt
		}
		if _, err := strconv.ParseUint(plain, 0, 64); err == nil {
			return scalarInt
		}
		if yaml11FloatSyntax.MatchString(plain) {
			if _, err := strconv.ParseFloat(plain, 64); err == nil {
				return scalarFloat
			}
		}
		if b, ok := strings.CutPrefix(plain, "0b"); ok {
			if _, err := strconv.ParseUint(b, 2, 64); err == nil {
				return scalarInt
			}
		} else if b, ok := strings.CutPrefix(plain, "-0b"); ok {
			if _, err := strconv.ParseInt("-"+b, 2, 64); err == nil {
				return scalarInt
			}
		}
	}
	return scalarText
}

// isTimestamp11 reports whether s is a YAML 1.1 timestamp, as
// go.yaml.in/yaml/v2 reads one.
func isTimestamp11(s string) bool {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i != 4 || i == len(s) || s[i] != '-' {
		return false
	}
	for _, f := range []string{"2006-1-2T15:4:5.999999999Z07:00", "2006-1-2t15:4:5.999999999Z07:00",
		"2006-1-2 15:4:5.999999999", "2006-1-2"} {
		if _, err := time.Parse(f, s); err == nil {
			return true
		}
	}
	return false
}

func yaml11Bool(s string) bool {
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON":
		return true
	}
	return false
}

// yaml11Int returns the value of an integer, or of a float that is whole.
func yaml11Int(n *yaml.Node, sk yamlScalarKind) (int64, bool) {
	switch sk {
	case scalarInt:
		plain := strings.ReplaceAll(n.Value, "_", "")
		if i, err := strconv.ParseInt(plain, 0, 64); err == nil {
			return i, true
		}
		if b, ok := strings.CutPrefix(plain, "0b"); ok {
			i, err := strconv.ParseInt(b, 2, 64)
			return i, err == nil
		}
		if b, ok := strings.CutPrefix(plain, "-0b"); ok {
			i, err := strconv.ParseInt("-"+b, 2, 64)
			return i, err == nil
		}
	case scalarFloat:
		if f, ok := yaml11Float(n, sk); ok && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return int64(f), true
		}
	}
	return 0, false
}

// yaml11Float returns the value of a number.
func yaml11Float(n *yaml.Node, sk yamlScalarKind) (float64, bool) {
	switch sk {
	case scalarInt:
		if i, ok := yaml11Int(n, sk); ok {
			return float64(i), true
		}
		u, err := strconv.ParseUint(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		return float64(u), err == nil
	case scalarFloat:
		switch strings.TrimPrefix(strings.ToLower(n.Value), "+") {
		case ".nan":
			return math.NaN(), true
		case ".inf":
			return math.Inf(1), true
		case "-.inf":
			return math.Inf(-1), true
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		return f, err == nil
	}
	return 0, false
}

var (
	serviceAccountInfo = structInfoOf(reflect.TypeFor[corev1.ServiceAccount]())
	objectMetaInfo     = structInfoOf(reflect.TypeFor[metav1.ObjectMeta]())
	metadataPath       = &fieldPath{name: "metadata"}
	labelsPath         = &fieldPath{parent: metadataPath, name: "labels"}
	annotationsPath    = &fieldPath{parent: metadataPath, name: "annotations"}
)

// decodeServiceAccount is decodeObject for a ServiceAccount: the fields
// manifests set (apiVersion, kind, metadata's name, namespace, labels and
// annotations) without reflection, and without making the path of a
// field an error would name unless there is an error, which is most of
// lint's time reading a large repository; any other field takes
// decodeValue.
func decodeServiceAccount(n *yaml.Node, sa *corev1.ServiceAccount) *fieldError {
	if n = deref(n); n.Kind != yaml.MappingNode {
		return decodeObject(n, sa)
	}
	return eachEntry(n, nil, true, func(name string, k, val *yaml.Node) *fieldError {
		switch name {
		case "apiVersion":
			return setText(val, &sa.APIVersion, nil, name)
		case "kind":
			return setText(val, &sa.Kind, nil, name)
		case "metadata":
			return decodeObjectMeta(val, &sa.ObjectMeta)
		}
		f, ok := serviceAccountInfo.fields[name]
		if !ok {
			return unknownFieldError(k, name, nil, serviceAccountInfo)
		}
		return decodeValue(val, reflect.ValueOf(sa).Elem().FieldByIndex(f), &fieldPath{name: name})
	})
}

func decodeObjectMeta(n *yaml.Node, meta *metav1.ObjectMeta) *fieldError {
	at := metadataPath
	if n = deref(n); n.Kind != yaml.MappingNode {
		return decodeValue(n, reflect.ValueOf(meta).Elem(), at)
	}
	return eachEntry(n, at, true, func(name string, k, val *yaml.Node) *fieldError {
		switch name {
		case "name":
			return setText(val, &meta.Name, at, name)
		case "namespace":
			return setText(val, &meta.Namespace, at, name)
		case "labels", "annotations":
			m, path := reflect.ValueOf(&meta.Labels).Elem(), labelsPath
			if name == "annotations" {
				m, path = reflect.ValueOf(&meta.Annotations).Elem(), annotationsPath
			}
			switch {
			case scalarKindOf(val) == scalarNull:
				return nil
			case deref(val).Kind == yaml.MappingNode:
				return decodeStringMap(deref(val), m, path)
			}
			return decodeValue(val, m, path)
		}
		f, ok := objectMetaInfo.fields[name]
		if !ok {
			return unknownFieldError(k, name, at, objectMetaInfo)
		}
		return decodeValue(val, reflect.ValueOf(meta).Elem().FieldByIndex(f), &fieldPath{parent: at, name: name})
	})
}

// setText decodes the string field name of the object at path at.
func setText(n *yaml.Node, dst *string, at *fieldPath, name string) *fieldError {
	switch sk := scalarKindOf(n); sk {
	case scalarText:
		*dst = deref(n).Value
	case scalarNull:
	default:
		return stringError(n, sk, &fieldPath{parent: at, name: name})
	}
	return nil
}
