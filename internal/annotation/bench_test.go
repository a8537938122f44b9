package annotation

import (
	"testing"
)

// BenchmarkDecodeAdversarial parses every corpus case with the memo off, as
// a hostile tenant's value that fails, and so is never remembered, costs on
// every reconcile.
//
//	go test -run '^$' -bench DecodeAdversarial -benchmem ./internal/annotation
func BenchmarkDecodeAdversarial(b *testing.B) {
	d := NewDecoder(0)
	for _, c := range adversarialCorpus() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.value)))
			for b.Loop() {
				var cfg testConfig
				_ = d.Decode(c.value, &cfg)
			}
		})
	}
}

// BenchmarkDecodeMemoHit decodes a value seen before, the cost every
// reconcile pays for a legitimate annotation.
func BenchmarkDecodeMemoHit(b *testing.B) {
	type assumeRole struct {
		RoleARN           string `json:"roleARN"`
		UseServiceAccount *bool  `json:"useServiceAccount,omitempty"`
	}
	const value = "roleARN: arn:aws:iam::222222222222:role/target\nuseServiceAccount: true\n"
	d := NewDecoder(DefaultMemoBytes)
	var warm assumeRole
	if err := d.Decode(value, &warm); err != nil {
		b.Fatal(err)
	}
	// out is allocated once, as a caller's would be, so that allocs/op
	// counts what Decode allocates: the copy of the *bool.
	b.Run("AssumeRoleConfig", func(b *testing.B) {
		b.ReportAllocs()
		out := new(assumeRole)
		for b.Loop() {
			if err := d.Decode(value, out); err != nil {
				b.Fatal(err)
			}
		}
	})
	type noPointers struct {
		RoleARN string `json:"roleARN"`
		Region  string `json:"region"`
	}
	const flat = "roleARN: arn:aws:iam::222222222222:role/target\nregion: eu-west-1\n"
	var warmFlat noPointers
	if err := d.Decode(flat, &warmFlat); err != nil {
		b.Fatal(err)
	}
	b.Run("strings-only", func(b *testing.B) {
		b.ReportAllocs()
		out := new(noPointers)
		for b.Loop() {
			if err := d.Decode(flat, out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			out := new(assumeRole)
			for pb.Next() {
				if err := d.Decode(value, out); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("miss", func(b *testing.B) {
		off := NewDecoder(0)
		b.ReportAllocs()
		out := new(assumeRole)
		for b.Loop() {
			if err := off.Decode(value, out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
