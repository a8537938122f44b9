package annotation

import (
	"errors"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
)

const roleARN = "arn:aws:iam::222222222222:role/target"

func TestDecode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		value string
		want  testConfig
	}{
		{"issue example", "roleARN: " + roleARN + "\nuseServiceAccount: true\n",
			testConfig{RoleARN: roleARN, UseServiceAccount: ptr.To(true)}},
		{"json", `{"roleARN": "` + roleARN + `", "useServiceAccount": false}`,
			testConfig{RoleARN: roleARN, UseServiceAccount: ptr.To(false)}},
		{"core schema True", "useServiceAccount: True", testConfig{UseServiceAccount: ptr.To(true)}},
		{"core schema FALSE", "useServiceAccount: FALSE", testConfig{UseServiceAccount: ptr.To(false)}},
		{"yes is a string", "roleARN: yes", testConfig{RoleARN: "yes"}},
		{"YAML 1.1 number is a string", "externalID: 1_000", testConfig{ExternalID: "1_000"}},
		{"quoted number", `externalID: "12345"`, testConfig{ExternalID: "12345"}},
		{"single-quoted", `externalID: 'it''s'`, testConfig{ExternalID: "it's"}},
		{"comments", "# who we assume\nroleARN: " + roleARN + " # the target\n", testConfig{RoleARN: roleARN}},
		{"document markers", "---\nroleARN: " + roleARN + "\n...\n", testConfig{RoleARN: roleARN}},
		{"crlf", "roleARN: " + roleARN + "\r\nexternalID: x\r\n", testConfig{RoleARN: roleARN, ExternalID: "x"}},
		{"tab after colon", "roleARN:\t" + roleARN, testConfig{RoleARN: roleARN}},
		{"literal block", "sessionPolicy: |\n  {\"Version\": \"2012-10-17\"}\n", testConfig{SessionPolicy: "{\"Version\": \"2012-10-17\"}\n"}},
		{"block list", "policyARNs:\n- a\n- b\n", testConfig{PolicyARNs: []string{"a", "b"}}},
		{"flow list", "policyARNs: [a, 'b,c']", testConfig{PolicyARNs: []string{"a", "b,c"}}},
		{"empty list", "policyARNs: []", testConfig{PolicyARNs: []string{}}},
		{"map", "labels:\n  team: a\n  '1': b\n", testConfig{Labels: map[string]string{"team": "a", "1": "b"}}},
		{"list of structs", "sessionTags:\n- key: team\n  value: a\n", testConfig{SessionTags: []testTag{{"team", "a"}}}},
		{"nested struct", "source: {roleARN: " + roleARN + "}", testConfig{Source: &testSource{RoleARN: roleARN}}},
		{"decimal", "durationSeconds: 3600", testConfig{DurationSeconds: 3600}},
		{"hexadecimal", "durationSeconds: 0xE10", testConfig{DurationSeconds: 3600}},
		{"octal", "durationSeconds: 0o7020", testConfig{DurationSeconds: 3600}},
		{"plain bool", "transitive: true", testConfig{Transitive: true}},
		{"unicode", "externalID: équipe-ü", testConfig{ExternalID: "équipe-ü"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			var got testConfig
			g.Expect(NewDecoder(0).Decode(tc.value, &got)).To(Succeed())
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

// TestDecodeRefuses pins the error of every input of issue 8 and of each
// rule of the subset.
func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	const twoLines = "roleARN: " + roleARN + "\n"
	for _, tc := range []struct {
		name, value, want string
	}{
		// Size, before parsing.
		{"issue anchor bomb", corpusValue("issue/anchor-bomb-115KB"),
			"the value is 120013 bytes, more than the limit of 32768: shorten it"},
		{"empty", "", "the value is empty: remove the annotation or set its fields"},
		{"whitespace", " \n\t\n", "the value is empty: remove the annotation or set its fields"},
		{"comments only", "# nothing\n", "the value holds only comments: remove the annotation or set its fields"},

		// YAML 1.1 booleans are strings to YAML 1.2.
		{"yes", twoLines + "useServiceAccount: yes", "useServiceAccount must be true or false, not 'yes'"},
		{"on", twoLines + "useServiceAccount: on", "useServiceAccount must be true or false, not 'on'"},
		{"y", twoLines + "useServiceAccount: y", "useServiceAccount must be true or false, not 'y'"},
		{"NO", twoLines + "useServiceAccount: NO", "useServiceAccount must be true or false, not 'NO'"},
		{"off", twoLines + "useServiceAccount: off", "useServiceAccount must be true or false, not 'off'"},
		{"quoted true", twoLines + `useServiceAccount: "true"`, "useServiceAccount must be true or false, without quotes"},
		{"number for bool", twoLines + "useServiceAccount: 1", "useServiceAccount must be true or false, not '1'"},

		// No null for any field.
		{"tilde", twoLines + "useServiceAccount: ~", "useServiceAccount is null ('~'): set a value or remove the field"},
		{"null", twoLines + "useServiceAccount: null", "useServiceAccount is null ('null'): set a value or remove the field"},
		{"empty field", twoLines + "useServiceAccount:", "useServiceAccount has no value: set one or remove the field"},
		{"empty string field", "roleARN:\n", "roleARN has no value: set one or remove the field"},
		{"null in list", "policyARNs: [a, ~]", "policyARNs[1] is null ('~'): set a value or remove the field"},

		// Anchors, aliases, merge keys, tags.
		{"anchor", "a: &a x\nb: [*a, *a]", "line 1: anchors and aliases are not allowed ('&a'): write each value out in full"},
		{"alias of unknown anchor", "roleARN: *a", "anchors and aliases are not allowed: write each value out in full"},
		{"billion laughs", corpusValue("billion-laughs"),
			"line 1: anchors and aliases are not allowed ('&a'): write each value out in full"},
		{"merge key", "<<: {roleARN: " + roleARN + "}", "line 1: merge keys ('<<') are not allowed: write the fields out"},
		{"binary tag", "roleARN: !!binary YXJuOmF3czppYW06OjIyMjIyMjIyMjIyMjpyb2xlL3RhcmdldA==",
			"line 1: tags are not allowed ('!!binary'): remove it and write the plain value"},
		{"local tag", "roleARN: !foo " + roleARN, "line 1: tags are not allowed ('!foo'): remove it and write the plain value"},
		{"str tag", "roleARN: !!str " + roleARN, "line 1: tags are not allowed ('!!str'): remove it and write the plain value"},
		{"non-specific tag", "useServiceAccount: ! true",
			"line 1: a '!' standing alone is a YAML tag to some readers: tags are not allowed, remove it"},
		{"directive", "%YAML 1.1\n---\nuseServiceAccount: yes",
			"line 1: YAML directives ('%YAML', '%TAG') are not allowed: remove the line"},

		// One document.
		{"second document", "roleARN: A\n---\nroleARN: B",
			"the value holds more than one YAML document: keep one, with no '---' or '...' line after it"},
		{"after document end", "roleARN: A\n...\nroleARN: B",
			"the value holds more than one YAML document: keep one, with no '---' or '...' line after it"},
		{"junk after document end", "roleARN: A\n...\n]: [",
			"the value is not valid YAML: line 3: mapping values are not allowed in this context"},

		// Shape and types, worded for a manifest author.
		{"not a mapping", "- " + roleARN, "the value must be a YAML mapping of fields, e.g. 'field: value'"},
		{"scalar", roleARN, "the value must be a YAML mapping of fields, e.g. 'field: value'"},
		{"number for string", "externalID: 12345", "externalID must be a string: quote the value"},
		{"number for role", "roleARN: 12345", "roleARN must be a string: quote the value"},
		{"float for string", "externalID: 1e3", "externalID must be a string: quote the value"},
		{"bool for string", "externalID: true", "externalID must be a string: quote the value"},
		{"list for string", "roleARN: [a, b]", "roleARN must be a string, not a list"},
		{"mapping for string", "roleARN: {a: b}", "roleARN must be a string, not a mapping"},
		{"string for list", "policyARNs: a", "policyARNs must be a list, not a string"},
		{"number in list", "policyARNs: [a, 1]", "policyARNs[1] must be a string: quote the value"},
		{"number in map", "labels: {team: 1}", "labels['team'] must be a string: quote the value"},
		{"number as map key", "labels: {1: a}", "labels must have text keys, not a number: quote the key"},
		{"list for struct", "source: [a]", "source must be a mapping of fields, not a list"},
		{"struct field type", "sessionTags: [{key: k, value: 1}]", "sessionTags[0].value must be a string: quote the value"},
		{"int too large", "durationSeconds: 4294967296",
			"durationSeconds must be a whole number that fits in 32 bits, not '4294967296'"},
		{"float for int", "durationSeconds: 1.5", "durationSeconds must be a whole number, not a number"},
		{"string for int", "durationSeconds: '3600'", "durationSeconds must be a whole number, not a string"},

		// Field names: case-sensitive, known, once.
		{"case typo", "roleArn: " + roleARN, "unknown field 'roleArn': did you mean 'roleARN'? field names are case-sensitive"},
		{"unknown", "role: " + roleARN, "unknown field 'role': the fields are 'roleARN', 'useServiceAccount', " +
			"'externalID', 'sessionTags', 'sessionPolicy', 'policyARNs', 'delegates', 'labels', 'durationSeconds', " +
			"'transitive', 'source'"},
		{"nested case typo", "sessionTags: [{Key: k}]", "unknown field 'Key' in sessionTags[0]: did you mean 'key'? " +
			"field names are case-sensitive"},
		{"nested unknown", "sessionTags: [{kee: k}]", "unknown field 'kee' in sessionTags[0]: the fields are 'key', 'value'"},
		{"number as field name", "1: x", "line 1: field names must be text, not a number"},
		{"duplicate field", "roleARN: A\nexternalID: x\nroleARN: B",
			"field 'roleARN' is set twice (lines 1 and 3): keep one"},
		{"duplicate map key", "labels:\n  team: a\n  team: b", "labels['team'] is set twice (lines 2 and 3): keep one"},
		{"quoted duplicate", "roleARN: A\n'roleARN': B", "field 'roleARN' is set twice (lines 1 and 2): keep one"},

		// Bytes YAML readers disagree on, and syntax.
		{"nul", "roleARN: a\x00", "line 1 holds a control character ('\\x00'): remove it"},
		{"escape sequence", "roleARN: x\n\x1b[2J", "line 2 holds a control character ('\\x1b'): remove it"},
		{"invalid utf-8", "roleARN: \xff", "line 1 holds a byte that is not UTF-8 ('\\xff'): remove it"},
		{"bom", "\ufeffroleARN: x", "line 1 holds a byte order mark ('\\ufeff'): remove it"},
		{"nel", "roleARN: a\u0085b", "line 1 holds a control character ('\\u0085'): remove it"},
		{"line separator", "roleARN: a\u2028b",
			"line 1 holds a line or paragraph separator ('\\u2028'), which YAML 1.1 readers take for a line break: remove it"},
		{"tab indent", "source:\n\troleARN: x", "the value is not valid YAML: line 2: found character that cannot start " +
			"any token (tabs cannot indent YAML and '@' or '`' cannot start a plain value: indent with spaces, quote the value)"},
		{"syntax", "roleARN: a: b", "the value is not valid YAML: mapping values are not allowed in this context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			got := testConfig{RoleARN: "unchanged"}
			err := NewDecoder(0).Decode(tc.value, &got)
			g.Expect(err).To(MatchError(tc.want))
			var e *Error
			g.Expect(errors.As(err, &e)).To(BeTrue())
			g.Expect(got).To(Equal(testConfig{RoleARN: "unchanged"}), "a failed decode leaves out alone")
		})
	}
}

func TestDecodeErrorFields(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	var got testConfig
	err := NewDecoder(0).Decode("roleARN: x\nsessionTags:\n- key: k\n  value: 1\n", &got)
	var e *Error
	g.Expect(errors.As(err, &e)).To(BeTrue())
	g.Expect(*e).To(Equal(Error{Field: "sessionTags[0].value", Line: 4,
		Reason: "sessionTags[0].value must be a string: quote the value"}))
}

// TestDecodeErrorsQuoteTenantText checks that tenant text reaches errors
// only escaped and cut, whatever it holds.
func TestDecodeErrorsQuoteTenantText(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", MaxValueBytes-100)
	for _, tc := range []struct {
		name, value, want string
	}{
		{"newline in unknown field", `"role\nARN: forged": x`,
			`unknown field 'role\nARN: forged': the fields are`},
		{"escape in map key", "labels: {\"\\e[2J\": 1}", `labels['\x1b[2J'] must be a string`},
		{"bidi in bool", "useServiceAccount: \"a\u202eb\"", "useServiceAccount must be true or false, without quotes"},
		{"long unknown field", "? " + long + "\n: x", "unknown field '" + strings.Repeat("k", 256) + "'… (32668 bytes in all)"},
		{"1 MiB value", strings.Repeat("\n\x1b", 1<<19), "the value is 1048576 bytes, more than the limit of 32768"},
		{"long alias", "roleARN: *" + long, "anchors and aliases are not allowed"},
		{"long anchor", "roleARN: &" + long + " x", "('&" + strings.Repeat("k", 255) + "'… (32669 bytes in all))"},
		{"long tag", "roleARN: !" + long + " x", "('!" + strings.Repeat("k", 255) + "'… (32669 bytes in all))"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			var got testConfig
			err := NewDecoder(0).Decode(tc.value, &got)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
			g.Expect(len(err.Error())).To(BeNumerically("<=", maxErrorBytes))
			g.Expect(hasRawControl(err.Error())).To(BeFalse(), "%q", err.Error())
		})
	}
}

// maxErrorBytes bounds the text of any error: a few paths and two quoted
// values of quote.MaxBytes, escaped.
const maxErrorBytes = 4 << 10

func hasRawControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0x202e
	})
}

func TestDecodeProgrammingErrors(t *testing.T) {
	t.Parallel()
	type unsupported struct {
		F float64 `json:"f"`
	}
	type badName struct {
		F string `json:"true"`
	}
	type badDuration struct {
		F int `json:"f" annotation:"duration"`
	}
	var s string
	for _, tc := range []struct {
		name string
		out  any
		want string
	}{
		{"nil", nil, "annotation: cannot decode into <nil>: want a non-nil pointer to a struct"},
		{"not a pointer", testConfig{}, "annotation: cannot decode into annotation.testConfig: want a non-nil pointer to a struct"},
		{"not a struct", &s, "annotation: cannot decode into string: want a pointer to a struct"},
		{"float field", &unsupported{}, "annotation: cannot decode into float64: unsupported kind float64"},
		{"name a YAML reader reads as a boolean", &badName{},
			`annotation: cannot decode into annotation.badName: field name "true" is not a plain YAML string`},
		{"duration field not a string", &badDuration{},
			`annotation: cannot decode into annotation.badDuration: duration field "f" must be a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			err := NewDecoder(0).Decode("f: x", tc.out)
			g.Expect(err).To(MatchError(tc.want))
			var e *Error
			g.Expect(errors.As(err, &e)).To(BeFalse(), "not the tenant's fault")
		})
	}
}

// A duration field takes a string; a bare number gets an error that asks
// for a unit, not for quotes, since quoting it would not make it right.
func TestDecodeDurationField(t *testing.T) {
	t.Parallel()
	type withDuration struct {
		D *string `json:"d" annotation:"duration"`
		S string  `json:"s"`
	}
	for _, tc := range []struct{ value, want string }{
		{"d: 3600", "d must be a duration with a unit, such as '15m', '1h' or '3600s', not the bare number '3600'"},
		{"d: 1.5", "d must be a duration with a unit, such as '15m', '1h' or '1.5s', not the bare number '1.5'"},
		{"d: [1h]", "d must be a string, not a list"},
		{"s: 3600", "s must be a string: quote the value"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			var out withDuration
			g.Expect(NewDecoder(0).Decode(tc.value, &out)).To(MatchError(tc.want))
		})
	}
	t.Run("a duration with a unit", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		var out withDuration
		g.Expect(NewDecoder(0).Decode("d: 1h30m", &out)).To(Succeed())
		g.Expect(*out.D).To(Equal("1h30m"))
	})
}
