package quote

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestTenant(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 1<<20)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "arn:aws:iam::123456789012:role/x", `'arn:aws:iam::123456789012:role/x'`},
		{"empty", "", `''`},
		{"newline forges no line", "a\nb\r\tc", `'a\nb\r\tc'`},
		{"terminal escape", "\x1b[2J", `'\x1b[2J'`},
		{"bidi override", "a\u202eb", `'a\u202eb'`},
		{"quote and backslash", `it's \ here`, `'it\'s \\ here'`},
		{"invalid utf-8", "a\xffb", `'a\xffb'`},
		{"nul", "a\x00b", `'a\x00b'`},
		{"printable unicode kept", "équipe-ü", `'équipe-ü'`},
		{"cut", long, "'" + strings.Repeat("a", MaxBytes) + "'… (1048576 bytes in all)"},
		{"cut on a rune boundary", strings.Repeat("a", MaxBytes-1) + "é" + long,
			"'" + strings.Repeat("a", MaxBytes-1) + "'… (1048833 bytes in all)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Tenant(tc.in); got != tc.want {
				t.Errorf("Tenant(%.40q) = %.300q, want %.300q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzTenant(f *testing.F) {
	for _, s := range []string{"", "a\nb", "\x1b[31m", "a\u202eb", "\xff", strings.Repeat("é", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Tenant(s)
		if len(q) > 4*MaxBytes+64 {
			t.Fatalf("quoted form is %d bytes", len(q))
		}
		for _, r := range q {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x202e {
				t.Fatalf("quoted form %q carries %U", q, r)
			}
		}
	})
}

func TestClean(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"failed to get 'x': it's fine", "failed to get 'x': it's fine"},
		{"line\nforged\x1b[0m", `line\nforged\x1b[0m`},
		{strings.Repeat("é", 20), strings.Repeat("é", 16) + "… (40 bytes in all)"},
	} {
		if got := Clean(tc.in, 33); got != tc.want {
			t.Errorf("Clean(%q, 33) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	if Error(nil) != nil {
		t.Fatal("Error(nil) is not nil")
	}
	sentinel := errors.New("sentinel")
	clean := fmt.Errorf("wrapped: %w", sentinel)
	if Error(clean) != clean {
		t.Error("a clean, short error was wrapped")
	}
	huge := fmt.Errorf("invalid role-arn annotation: '%s\n%s': %w", strings.Repeat("a", 1<<20), "\x1b]0;pwned\a", sentinel)
	got := Error(huge)
	if !errors.Is(got, sentinel) {
		t.Error("errors.Is does not see through")
	}
	if len(got.Error()) > MaxErrorBytes+64 {
		t.Errorf("message is %d bytes", len(got.Error()))
	}
	if !strings.HasSuffix(got.Error(), "… (1048628 bytes in all)") {
		t.Errorf("message ends %q", got.Error()[len(got.Error())-40:])
	}
	escaped := Error(fmt.Errorf("x\n\x1b]0;pwned\a"))
	if escaped.Error() != `x\n\x1b]0;pwned\a` {
		t.Errorf("got %q", escaped.Error())
	}
}
