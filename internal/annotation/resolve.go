package annotation

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// scalarType is what a YAML 1.2 reader makes of a scalar under the core
// schema, the one an admission policy or a person reading the value
// applies. yaml.v3's own resolution follows YAML 1.1 in places (it takes
// '<<' as a merge key and '1_000' as a number), so Decode resolves plain
// scalars here instead.
type scalarType int

const (
	scalarString scalarType = iota
	scalarNull
	scalarBool
	scalarInt
	scalarFloat
)

func (t scalarType) String() string {
	return [...]string{"a string", "null", "a boolean", "a number", "a number"}[t]
}

// resolve returns the core-schema type of n, a scalar node: quoted and
// block scalars are strings; plain ones are null, a boolean, a number or a
// string by their text.
func resolve(n *yaml.Node) scalarType {
	if !isPlain(n) {
		return scalarString
	}
	return resolvePlain(n.Value)
}

func isPlain(n *yaml.Node) bool {
	return n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
}

// resolvePlain implements the tag resolution of the YAML 1.2.2 core schema
// (https://yaml.org/spec/1.2.2/#1033-core-schema).
func resolvePlain(s string) scalarType {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return scalarNull
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return scalarBool
	case ".nan", ".NaN", ".NAN":
		return scalarFloat
	}
	if isCoreInt(s) {
		return scalarInt
	}
	if isCoreFloat(s) {
		return scalarFloat
	}
	return scalarString
}

// isCoreInt matches [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+.
func isCoreInt(s string) bool {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x') {
		base := 8
		if s[1] == 'x' {
			base = 16
		}
		return allDigits(s[2:], base)
	}
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	return s != "" && allDigits(s, 10)
}

// isCoreFloat matches [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
// and [-+]?\.(inf|Inf|INF).
func isCoreFloat(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	switch s {
	case ".inf", ".Inf", ".INF":
		return true
	}
	intPart := leadingDigits(s)
	s = s[intPart:]
	fracPart := 0
	if s != "" && s[0] == '.' {
		fracPart = leadingDigits(s[1:])
		if intPart == 0 && fracPart == 0 {
			return false
		}
		s = s[1+fracPart:]
	} else if intPart == 0 {
		return false
	}
	if s == "" {
		return true
	}
	if s[0] != 'e' && s[0] != 'E' {
		return false
	}
	s = s[1:]
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	return s != "" && allDigits(s, 10)
}

func leadingDigits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

func allDigits(s string, base int) bool {
	for i := 0; i < len(s); i++ {
		if d := digitValue(s[i]); d < 0 || d >= base {
			return false
		}
	}
	return true
}

func digitValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// parseCoreInt parses s, which isCoreInt matched, into bits bits.
func parseCoreInt(s string, bits int) (int64, error) {
	switch {
	case len(s) > 2 && s[:2] == "0o":
		return strconv.ParseInt(s[2:], 8, bits)
	case len(s) > 2 && s[:2] == "0x":
		return strconv.ParseInt(s[2:], 16, bits)
	}
	return strconv.ParseInt(s, 10, bits)
}
