package azure

import (
	"encoding/base64"
	"testing"
)

// The federated credential to create is named from the source token's
// claims when they can be read, and by its rule otherwise; claims are
// quoted and escaped.
func TestIssuerAndSubject(t *testing.T) {
	t.Parallel()
	jwt := func(payload string) string {
		return "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	const rule = "issuer https://login.microsoftonline.com/<tenant ID of the source managed identity>/v2.0, " +
		"subject the principal (object) ID of the source managed identity,"
	for _, tt := range []struct {
		name, token, want string
	}{
		{name: "an Entra token", token: jwt(`{"iss":"https://login.microsoftonline.com/t/v2.0","sub":"p"}`),
			want: "issuer 'https://login.microsoftonline.com/t/v2.0', subject 'p' (the principal ID of the source managed identity)"},
		{name: "padded payload", token: "h." + base64.URLEncoding.EncodeToString([]byte(`{"iss":"i","sub":"s"}`)) + ".s",
			want: "issuer 'i', subject 's' (the principal ID of the source managed identity)"},
		{name: "hostile claims are escaped", token: jwt(`{"iss":"i\n\u001b[2J","sub":"s'"}`),
			want: `issuer 'i\n\x1b[2J', subject 's\'' (the principal ID of the source managed identity)`},
		{name: "opaque", token: "opaque-token", want: rule},
		{name: "four parts", token: "a.b.c.d", want: rule},
		{name: "not base64", token: "a.!!!.c", want: rule},
		{name: "not JSON", token: jwt(`not json`), want: rule},
		{name: "no subject", token: jwt(`{"iss":"i"}`), want: rule},
	} {
		if got := managedIdentityToken.issuerAndSubject(tt.token); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
