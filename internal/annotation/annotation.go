package annotation

import (
	"fmt"
	"reflect"
)

// Decode strictly decodes one annotation value into out, a pointer to a
// struct with json tags: string, bool, int, pointer, slice, map[string]T and
// struct fields. It sets all of *out, zeroing the fields the value does not
// set, and leaves *out unchanged when it fails. A value it refuses gets an
// *Error; a plain error means out's type cannot be decoded into, which is a
// programming error. See the package documentation for the YAML it accepts.
func Decode(value string, out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("annotation: cannot decode into %T: want a non-nil pointer to a struct", out)
	}
	dst := rv.Elem()
	p, err := planFor(dst.Type())
	if err != nil {
		return err
	}
	if err := prescan(value); err != nil {
		return err
	}
	root, err := parse(value)
	if err != nil {
		return err
	}
	val := reflect.New(p.typ).Elem()
	dec := decoder{size: int(p.typ.Size())}
	if err := dec.structure(root, p, val); err != nil {
		return err
	}
	dst.Set(val)
	return nil
}
