package annotation

import (
	"fmt"
	"reflect"
	"strings"
)

// Decoder decodes annotation values through a memo of the values it
// decoded before. It is safe for concurrent use.
type Decoder struct {
	memo *memo
}

// NewDecoder returns a Decoder whose memo holds at most memoBytes bytes of
// values and decoded forms (see DefaultMemoBytes); 0 disables the memo.
func NewDecoder(memoBytes int) *Decoder {
	return &Decoder{memo: newMemo(memoBytes)}
}

var std = NewDecoder(DefaultMemoBytes)

// Decode strictly decodes one annotation value into out, a pointer to a
// struct with json tags, through a memo of DefaultMemoBytes shared by the
// process. See the package documentation for the YAML it accepts.
func Decode(value string, out any) error { return std.Decode(value, out) }

// Decode strictly decodes one annotation value into out, a pointer to a
// struct with json tags: string, bool, int, pointer, slice, map[string]T and
// struct fields. It sets all of *out, zeroing the fields the value does not
// set, and leaves *out unchanged when it fails. A value it refuses gets an
// *Error; a plain error means out's type cannot be decoded into, which is a
// programming error.
func (d *Decoder) Decode(value string, out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("annotation: cannot decode into %T: want a non-nil pointer to a struct", out)
	}
	dst := rv.Elem()
	if e := d.memo.get(dst.Type(), value); e != nil {
		e.plan.copyValue(dst, e.val)
		return nil
	}
	p, err := planFor(dst.Type())
	if err != nil {
		return err
	}
	if err := prescan(value); err != nil {
		return err
	}
	root, err := parse(value, annotationValue)
	if err != nil {
		return err
	}
	val := reflect.New(p.typ).Elem()
	dec := decoder{size: int(p.typ.Size())}
	if err := dec.structure(root, p, val); err != nil {
		return err
	}
	d.memo.put(p, value, val, dec.size)
	dst.Set(val)
	return nil
}

// MaxFileBytes is the largest file DecodeFile reads.
const MaxFileBytes = 1 << 20

// DecodeFile strictly decodes a YAML file that an operator owns, such as an
// impersonation policy, into out: the same YAML subset and the same errors
// as Decode, but up to MaxFileBytes, without the token and nesting limits
// that guard against tenants, and without the memo. A file is read once,
// when a controller starts.
func DecodeFile(value string, out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("annotation: cannot decode into %T: want a non-nil pointer to a struct", out)
	}
	p, err := planFor(rv.Elem().Type())
	if err != nil {
		return err
	}
	switch {
	case len(value) > MaxFileBytes:
		return &Error{Reason: fmt.Sprintf("the file is %d bytes, more than the limit of %d", len(value), MaxFileBytes)}
	case strings.TrimSpace(value) == "":
		return &Error{Reason: "the file is empty"}
	}
	root, err := parse(value, operatorFile)
	if err != nil {
		return err
	}
	val := reflect.New(p.typ).Elem()
	dec := decoder{}
	if err := dec.structure(root, p, val); err != nil {
		return err
	}
	rv.Elem().Set(val)
	return nil
}
