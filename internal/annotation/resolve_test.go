package annotation

import (
	"testing"

	. "github.com/onsi/gomega"
)

// TestResolvePlain checks the YAML 1.2 core schema, and that what YAML 1.1
// (and yaml.v3) resolve otherwise stays a string.
func TestResolvePlain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want scalarType
	}{
		{"", scalarNull}, {"~", scalarNull}, {"null", scalarNull}, {"Null", scalarNull}, {"NULL", scalarNull},
		{"true", scalarBool}, {"True", scalarBool}, {"TRUE", scalarBool},
		{"false", scalarBool}, {"False", scalarBool}, {"FALSE", scalarBool},
		{"0", scalarInt}, {"-12", scalarInt}, {"+12", scalarInt}, {"0o17", scalarInt}, {"0x1F", scalarInt}, {"0xff", scalarInt},
		{"1.5", scalarFloat}, {"-.5", scalarFloat}, {"1.", scalarFloat}, {"1e3", scalarFloat}, {"1.5E-3", scalarFloat},
		{".inf", scalarFloat}, {"-.Inf", scalarFloat}, {"+.INF", scalarFloat}, {".nan", scalarFloat}, {".NaN", scalarFloat},
		// YAML 1.1 only: strings in YAML 1.2.
		{"yes", scalarString}, {"no", scalarString}, {"on", scalarString}, {"off", scalarString}, {"y", scalarString},
		{"n", scalarString}, {"tRUE", scalarString}, {"1_000", scalarString}, {"0b101", scalarString},
		{"1:20", scalarString}, {"017x", scalarString}, {"0o8", scalarString}, {"0x", scalarString}, {"0o", scalarString},
		{"2001-12-14", scalarString}, {"<<", scalarString}, {"=", scalarString},
		// Not numbers.
		{".", scalarString}, {"-", scalarString}, {"+", scalarString}, {"1e", scalarString}, {"e3", scalarString},
		{".e3", scalarString}, {"1.5.5", scalarString}, {"-.nan", scalarString}, {".infinity", scalarString},
		{"- 1", scalarString}, {"0x-1", scalarString}, {"1 ", scalarString},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			NewWithT(t).Expect(resolvePlain(tc.in)).To(Equal(tc.want))
		})
	}
}
