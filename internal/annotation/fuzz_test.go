package annotation

import (
	"encoding/json"
	"errors"
	"testing"
)

// fuzzSeeds are the inputs of issue 8 and a few of each construct; the
// adversarial corpus joins them.
var fuzzSeeds = []string{
	"roleARN: " + roleARN + "\nuseServiceAccount: true\n",
	`{"roleARN": "x", "useServiceAccount": false, "policyARNs": ["a", "b"], "labels": {"k": "v"}}`,
	"useServiceAccount: yes", "useServiceAccount: on", "useServiceAccount: y", "useServiceAccount: NO",
	"useServiceAccount: off", "useServiceAccount: ~", "useServiceAccount:", "useServiceAccount: True",
	"<<: {roleARN: x}", "roleARN: !!binary YXJu", "roleARN: !foo x", "roleARN: !!str x", "roleARN: ! true",
	"roleARN: A\n---\nroleARN: B", "roleARN: A\n...\nroleARN: B", "%YAML 1.1\n---\nroleARN: x",
	"roleArn: x", "externalID: 12345", "roleARN: yes", "roleARN: a\nroleARN: b", "labels: {a: b, a: c}",
	"sessionTags:\n- key: k\n  value: v\n", "source: {roleARN: x}", "durationSeconds: 0x10",
	"sessionPolicy: |\n  {\"a\": [1, 2]}\n", "externalID: \"\\t\\u00e9\\x1b\"", "externalID: 'it''s'",
	"? roleARN\n: x", "roleARN: >-\n  folded\n  text\n", "labels:\n  ? [a]\n  : b",
}

// FuzzDecode checks that no value panics Decode, that every error is a
// bounded *Error free of raw control characters, and that a value that
// decodes round-trips: decode, encode as JSON (which is YAML), decode again
// gives the same.
//
//	go test -run '^$' -fuzz FuzzDecode -fuzztime 5m ./internal/annotation
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	for _, c := range adversarialCorpus() {
		if len(c.value) <= MaxValueBytes+1 {
			// Larger ones only test the size check, and slow the
			// fuzzer's minimizing of what it derives from them.
			f.Add(c.value)
		}
	}
	memo := NewDecoder(1 << 20)
	f.Fuzz(func(t *testing.T, value string) {
		var got testConfig
		err := NewDecoder(0).Decode(value, &got)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %q is a %T, not an *Error", err, err)
			}
			if len(err.Error()) > maxErrorBytes {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			if hasRawControl(err.Error()) {
				t.Fatalf("error %q holds a raw control character", err)
			}
			return
		}
		var hit testConfig
		for range 2 {
			if err := memo.Decode(value, &hit); err != nil {
				t.Fatalf("decodes without the memo but not with it: %v", err)
			}
		}
		first := mustJSON(t, got)
		if string(mustJSON(t, hit)) != string(first) {
			t.Fatalf("memo gives %s, not %s", mustJSON(t, hit), first)
		}
		if prescan(string(first)) != nil {
			return // JSON can take more bytes or brackets than the YAML did
		}
		var again testConfig
		if err := NewDecoder(0).Decode(string(first), &again); err != nil {
			t.Fatalf("%q decodes to %s, which does not decode: %v", value, first, err)
		}
		if second := mustJSON(t, again); string(second) != string(first) {
			t.Fatalf("%q decodes to %s, which decodes to %s", value, first, second)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
