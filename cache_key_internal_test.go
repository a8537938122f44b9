package auth

import "testing"

// Inputs that a naive join would confuse must hash apart.
func TestHashKeyBoundaries(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2][]KeyInput{
		{{{"a", "bc"}}, {{"ab", "c"}}},
		{{{"a", []string{"x,y"}}}, {{"a", []string{"x", "y"}}}},
		{{{"a", []string{"x", "y"}}}, {{"a", []string{"y", "x"}}}},
		{{{"a", "x"}}, {{"a", []string{"x"}}}},
		{{{"a", []string{""}}}, {{"a", []string{}}}},
		{{{"a", "x"}, {"b", ""}}, {{"a", "x\x01b\x00"}}},
	} {
		if hashKey(pair[0]...) == hashKey(pair[1]...) {
			t.Errorf("%v and %v share a key", pair[0], pair[1])
		}
	}
	if hashKey(KeyInput{"a", []string(nil)}) != hashKey(KeyInput{"a", []string{}}) {
		t.Error("nil and empty lists both mean none and must share a key")
	}
}
