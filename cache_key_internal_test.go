package auth

import "testing"

// Inputs that a naive join would confuse must hash apart.
func TestHashKeyBoundaries(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2][]keyInput{
		{{{Name: "a", Value: "bc"}}, {{Name: "ab", Value: "c"}}},
		{{{Name: "a", Value: []string{"x,y"}}}, {{Name: "a", Value: []string{"x", "y"}}}},
		{{{Name: "a", Value: []string{"x", "y"}}}, {{Name: "a", Value: []string{"y", "x"}}}},
		{{{Name: "a", Value: "x"}}, {{Name: "a", Value: []string{"x"}}}},
		{{{Name: "a", Value: []string{""}}}, {{Name: "a", Value: []string{}}}},
		{{{Name: "a", Value: "x"}, {Name: "b", Value: ""}}, {{Name: "a", Value: "x\x01b\x00"}}},
	} {
		if hashKey(pair[0]...) == hashKey(pair[1]...) {
			t.Errorf("%v and %v share a key", pair[0], pair[1])
		}
	}
	if hashKey(keyInput{Name: "a", Value: []string(nil)}) != hashKey(keyInput{Name: "a", Value: []string{}}) {
		t.Error("nil and empty lists both mean none and must share a key")
	}
}
