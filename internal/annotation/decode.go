package annotation

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/identitychain/auth/internal/quote"
)

// step is one level of the path to a node, for errors: a field name (ours),
// a map key (the tenant's, quoted when shown) or a list index.
type step struct {
	name  string
	index int
	isKey bool
}

// pathString renders steps as 'sessionTags[2].key' or "labels['team']".
func pathString(steps []step) string {
	var b strings.Builder
	for i, s := range steps {
		switch {
		case s.isKey:
			fmt.Fprintf(&b, "[%s]", quote.Tenant(s.name))
		case s.name != "":
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.name)
		default:
			fmt.Fprintf(&b, "[%d]", s.index)
		}
	}
	return b.String()
}

// decoder decodes a checked node tree into Go values of a plan and adds up
// the bytes those values hold, which the memo accounts for.
type decoder struct {
	size int
	at   []step // the path to the node being decoded; a stack, not allocated per node
}

// fail reports a problem with the node at d.at.
func (d *decoder) fail(n *yaml.Node, format string, args ...any) error {
	at := pathString(d.at)
	return &Error{Field: at, Line: n.Line, Reason: at + " " + fmt.Sprintf(format, args...)}
}

// child decodes n into v one step down the path.
func (d *decoder) child(n *yaml.Node, p *plan, v reflect.Value, s step) error {
	d.at = append(d.at, s)
	err := d.value(n, p, v)
	d.at = d.at[:len(d.at)-1]
	return err
}

func (d *decoder) value(n *yaml.Node, p *plan, v reflect.Value) error {
	if n.Kind == yaml.ScalarNode && resolve(n) == scalarNull {
		return d.null(n)
	}
	switch p.kind {
	case reflect.String:
		return d.str(n, v)
	case reflect.Bool:
		return d.boolean(n, v)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return d.integer(n, v)
	case reflect.Pointer:
		e := reflect.New(p.elem.typ)
		if err := d.value(n, p.elem, e.Elem()); err != nil {
			return err
		}
		d.size += int(p.elem.typ.Size())
		v.Set(e)
		return nil
	case reflect.Slice:
		return d.list(n, p, v)
	case reflect.Map:
		return d.mapping(n, p, v)
	default:
		return d.structure(n, p, v)
	}
}

// null refuses a null: a field is either absent or set, never unset
// explicitly, since readers disagree on what that means.
func (d *decoder) null(n *yaml.Node) error {
	if n.Value == "" {
		return d.fail(n, "has no value: set one or remove the field")
	}
	return d.fail(n, "is null (%s): set a value or remove the field", quote.Tenant(n.Value))
}

// what names the kind of a node that is not what a field wants.
func what(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return resolve(n).String()
}

func (d *decoder) str(n *yaml.Node, v reflect.Value) error {
	s, err := d.text(n)
	if err != nil {
		return err
	}
	v.SetString(s)
	return nil
}

// text returns the string n holds, refusing what a YAML 1.2 reader would
// not read as a string: 12345 and true are a number and a boolean to it.
func (d *decoder) text(n *yaml.Node) (string, error) {
	switch {
	case n.Kind != yaml.ScalarNode:
		return "", d.fail(n, "must be a string, not %s", what(n))
	case resolve(n) == scalarNull:
		return "", d.null(n)
	case resolve(n) != scalarString:
		return "", d.fail(n, "must be a string: quote the value")
	}
	d.size += len(n.Value)
	return n.Value, nil
}

func (d *decoder) boolean(n *yaml.Node, v reflect.Value) error {
	switch {
	case n.Kind != yaml.ScalarNode:
		return d.fail(n, "must be true or false, not %s", what(n))
	case !isPlain(n):
		return d.fail(n, "must be true or false, without quotes")
	case resolve(n) != scalarBool:
		return d.fail(n, "must be true or false, not %s", quote.Tenant(n.Value))
	}
	v.SetBool(n.Value[0] == 't' || n.Value[0] == 'T')
	return nil
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value) error {
	if n.Kind != yaml.ScalarNode || resolve(n) != scalarInt {
		return d.fail(n, "must be a whole number, not %s", what(n))
	}
	i, err := parseCoreInt(n.Value, v.Type().Bits())
	if err != nil {
		return d.fail(n, "must be a whole number that fits in %d bits, not %s", v.Type().Bits(), quote.Tenant(n.Value))
	}
	v.SetInt(i)
	return nil
}

func (d *decoder) list(n *yaml.Node, p *plan, v reflect.Value) error {
	if n.Kind != yaml.SequenceNode {
		return d.fail(n, "must be a list, not %s", what(n))
	}
	s := reflect.MakeSlice(p.typ, len(n.Content), len(n.Content))
	d.size += len(n.Content) * int(p.elem.typ.Size())
	for i, c := range n.Content {
		if err := d.child(c, p.elem, s.Index(i), step{index: i}); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

// keyOf returns the text of a mapping key, which must be a scalar a YAML
// 1.2 reader reads as a string.
func (d *decoder) keyOf(k *yaml.Node) (string, error) {
	if k.Kind == yaml.ScalarNode && resolve(k) == scalarString {
		return k.Value, nil
	}
	if len(d.at) == 0 {
		return "", &Error{Line: k.Line, Reason: fmt.Sprintf("line %d: field names must be text, not %s", k.Line, what(k))}
	}
	return "", d.fail(k, "must have text keys, not %s: quote the key", what(k))
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// firstLine returns the line of the first key of mapping n with text key,
// for the error about its duplicate.
func firstLine(n *yaml.Node, key string) int {
	for i := 0; i < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return 0
}

func (d *decoder) mapping(n *yaml.Node, p *plan, v reflect.Value) error {
	if n.Kind != yaml.MappingNode {
		return d.fail(n, "must be a mapping, not %s", what(n))
	}
	size := len(n.Content) / 2
	m := reflect.MakeMapWithSize(p.typ, size)
	// map[string]string is the common case; plain Go map operations spare
	// it two allocations per entry.
	strs, _ := m.Interface().(map[string]string)
	for i := 0; i < len(n.Content); i += 2 {
		k, c := n.Content[i], n.Content[i+1]
		key, err := d.keyOf(k)
		if err != nil {
			return err
		}
		at := step{name: key, isKey: true}
		if dup := strs != nil && hasKey(strs, key) || strs == nil && m.MapIndex(reflect.ValueOf(key)).IsValid(); dup {
			d.at = append(d.at, at)
			return d.fail(k, "is set twice (lines %d and %d): keep one", firstLine(n, key), k.Line)
		}
		// Map entries cost about their key, value and a bucket slot.
		d.size += len(key) + int(p.elem.typ.Size()) + 32
		if strs != nil {
			d.at = append(d.at, at)
			s, err := d.text(c)
			d.at = d.at[:len(d.at)-1]
			if err != nil {
				return err
			}
			strs[key] = s
			continue
		}
		e := reflect.New(p.elem.typ).Elem()
		if err := d.child(c, p.elem, e, at); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(key), e)
	}
	v.Set(m)
	return nil
}

func (d *decoder) structure(n *yaml.Node, p *plan, v reflect.Value) error {
	if n.Kind != yaml.MappingNode {
		return d.fail(n, "must be a mapping of fields, not %s", what(n))
	}
	var set uint64 // fields already set; plans have at most 64
	for i := 0; i < len(n.Content); i += 2 {
		k, c := n.Content[i], n.Content[i+1]
		key, err := d.keyOf(k)
		if err != nil {
			return err
		}
		fi, ok := p.byName[key]
		if !ok {
			return d.unknown(k, p, key)
		}
		f := p.fields[fi]
		at := step{name: f.name}
		if bit := uint64(1) << fi; set&bit == 0 {
			set |= bit
		} else {
			d.at = append(d.at, at)
			field := pathString(d.at)
			return &Error{Field: field, Line: k.Line, Reason: fmt.Sprintf(
				"field '%s' is set twice (lines %d and %d): keep one", field, firstLine(n, key), k.Line)}
		}
		if f.duration && c.Kind == yaml.ScalarNode && (resolve(c) == scalarInt || resolve(c) == scalarFloat) {
			d.at = append(d.at, at)
			return d.fail(c, "must be a duration with a unit, such as '15m', '1h' or '%ss', not the bare number %s",
				quote.Clean(c.Value, 32), quote.Tenant(c.Value))
		}
		if err := d.child(c, f.plan, v.Field(f.index), at); err != nil {
			return err
		}
	}
	return nil
}

// unknown reports a key that names no field: a typo must never go unseen,
// since it could change which identity is used.
func (d *decoder) unknown(k *yaml.Node, p *plan, key string) error {
	at := pathString(d.at)
	where := ""
	if at != "" {
		where = " in " + at
	}
	hint := "the fields are " + p.names
	if s := p.suggest(key); s != "" {
		hint = fmt.Sprintf("did you mean '%s'? field names are case-sensitive", s)
	}
	return &Error{Field: at, Line: k.Line, Reason: fmt.Sprintf(
		"unknown field %s%s: %s", quote.Tenant(key), where, hint)}
}
