package redact

import (
	"net/url"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"http://user:s3cret@proxy:8080", "http://REDACTED@proxy:8080"},
		{"http://ghp_token@github.com/org/repo", "http://REDACTED@github.com/org/repo"},
		{"http://:s3cret@proxy", "http://REDACTED@proxy"},
		{"https://proxy:3128/path?q=1", "https://proxy:3128/path?q=1"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := URL(u); got != tc.want {
			t.Errorf("URL(%s) = %s, want %s", tc.in, got, tc.want)
		}
		if u.User != nil && u.User.Username() == Placeholder {
			t.Errorf("URL modified its argument")
		}
	}
	if got := URL(nil); got != "" {
		t.Errorf("URL(nil) = %q, want empty", got)
	}
}
