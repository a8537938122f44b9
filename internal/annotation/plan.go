package annotation

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// plan says how to decode into and copy one Go type. Plans are built once
// per type, so the reflection over struct tags is not paid per value.
type plan struct {
	typ  reflect.Type
	kind reflect.Kind // String, Bool, Int*, Struct, Slice, Map or Pointer
	elem *plan        // of a slice, map value or pointer
	// fields of a struct, by their JSON names.
	fields []field
	byName map[string]int
	names  string // "'a', 'b'" for errors
	// shared is true when a shallow copy of a value shares no memory a
	// caller could change: no pointers, slices or maps inside.
	shared bool
}

type field struct {
	name  string
	index int
	plan  *plan
	// duration marks a string field that holds a duration such as "15m"
	// (tag `annotation:"duration"`), so that a bare number gets an error
	// that asks for a unit rather than for quotes.
	duration bool
}

var plans sync.Map // reflect.Type to *plan

// planFor returns the plan for t, which must be a struct type.
func planFor(t reflect.Type) (*plan, error) {
	if p, ok := plans.Load(t); ok {
		return p.(*plan), nil
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("annotation: cannot decode into %s: want a pointer to a struct", t)
	}
	p, err := buildPlan(t, map[reflect.Type]*plan{})
	if err != nil {
		return nil, err
	}
	actual, _ := plans.LoadOrStore(t, p)
	return actual.(*plan), nil
}

// buildPlan builds the plan of t; building holds the plans under
// construction, so a type that refers to itself gets a finite plan.
func buildPlan(t reflect.Type, building map[reflect.Type]*plan) (*plan, error) {
	if p, ok := building[t]; ok {
		return p, nil
	}
	p := &plan{typ: t, kind: t.Kind(), shared: true}
	building[t] = p
	var err error
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
	case reflect.Pointer, reflect.Slice:
		p.shared = false
		p.elem, err = buildPlan(t.Elem(), building)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("annotation: cannot decode into %s: map keys must be strings", t)
		}
		p.shared = false
		p.elem, err = buildPlan(t.Elem(), building)
	case reflect.Struct:
		err = p.buildFields(building)
	default:
		return nil, fmt.Errorf("annotation: cannot decode into %s: unsupported kind %s", t, t.Kind())
	}
	return p, err
}

func (p *plan) buildFields(building map[reflect.Type]*plan) error {
	p.byName = map[string]int{}
	var names []string
	for i := range p.typ.NumField() {
		sf := p.typ.Field(i)
		tag := sf.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case !sf.IsExported() || name == "-":
			continue
		case sf.Anonymous && name == "":
			return fmt.Errorf("annotation: cannot decode into %s: embedded field %s needs a json name", p.typ, sf.Name)
		case name == "":
			name = sf.Name
		}
		if resolvePlain(name) != scalarString {
			// A YAML 1.2 reader would not read the key as this text.
			return fmt.Errorf("annotation: cannot decode into %s: field name %q is not a plain YAML string", p.typ, name)
		}
		if len(p.fields) == 64 {
			// The decoder tracks the fields it has set in a uint64.
			return fmt.Errorf("annotation: cannot decode into %s: more than 64 fields", p.typ)
		}
		if _, dup := p.byName[name]; dup {
			return fmt.Errorf("annotation: cannot decode into %s: two fields are named %q", p.typ, name)
		}
		fp, err := buildPlan(sf.Type, building)
		if err != nil {
			return err
		}
		// A field plan under construction (a type that refers to itself)
		// is reached only through a pointer, slice or map, which already
		// made this plan not shared.
		p.shared = p.shared && fp.shared
		p.byName[name] = len(p.fields)
		duration := sf.Tag.Get("annotation") == "duration"
		if duration && fp.kind != reflect.String && (fp.kind != reflect.Pointer || fp.elem.kind != reflect.String) {
			return fmt.Errorf("annotation: cannot decode into %s: duration field %q must be a string", p.typ, name)
		}
		p.fields = append(p.fields, field{name: name, index: i, plan: fp, duration: duration})
		names = append(names, "'"+name+"'")
	}
	p.names = strings.Join(names, ", ")
	return nil
}

// suggest returns the field name that key matches but for case, if any.
func (p *plan) suggest(key string) string {
	for _, f := range p.fields {
		if strings.EqualFold(f.name, key) {
			return f.name
		}
	}
	return ""
}

// copyValue sets dst to a deep copy of src, so that what the memo holds is
// never shared with a caller that might change it.
func (p *plan) copyValue(dst, src reflect.Value) {
	if p.shared {
		dst.Set(src)
		return
	}
	switch p.kind {
	case reflect.Pointer:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		v := reflect.New(p.elem.typ)
		p.elem.copyValue(v.Elem(), src.Elem())
		dst.Set(v)
	case reflect.Slice:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		v := reflect.MakeSlice(p.typ, src.Len(), src.Len())
		for i := range src.Len() {
			p.elem.copyValue(v.Index(i), src.Index(i))
		}
		dst.Set(v)
	case reflect.Map:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		v := reflect.MakeMapWithSize(p.typ, src.Len())
		it := src.MapRange()
		for it.Next() {
			e := reflect.New(p.elem.typ).Elem()
			p.elem.copyValue(e, it.Value())
			v.SetMapIndex(it.Key(), e)
		}
		dst.Set(v)
	case reflect.Struct:
		dst.Set(src)
		for _, f := range p.fields {
			if !f.plan.shared {
				f.plan.copyValue(dst.Field(f.index), src.Field(f.index))
			}
		}
	}
}
