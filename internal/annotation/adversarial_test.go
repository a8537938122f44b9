package annotation

import (
	"runtime"
	"testing"

	. "github.com/onsi/gomega"
)

// maxDecodeBytes is the memory budget of decoding one value.
const maxDecodeBytes = 1 << 20

// TestDecodeAdversarialMemory asserts the memory bound of parsing and
// decoding every corpus case, through the memo as in production and without
// it. Allocated bytes are deterministic; time is measured by
// BenchmarkDecodeAdversarial, not asserted.
//
// It does not run in parallel: runtime.MemStats counts the whole process,
// and sequential tests run while parallel ones wait.
func TestDecodeAdversarialMemory(t *testing.T) {
	const runs = 3
	for _, c := range adversarialCorpus() {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			for _, memoBytes := range []int{DefaultMemoBytes, 0} {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for range runs {
					// A fresh decoder each time, so every run parses.
					var out testConfig
					_ = NewDecoder(memoBytes).Decode(c.value, &out)
				}
				runtime.ReadMemStats(&after)
				perDecode := (after.TotalAlloc - before.TotalAlloc) / runs
				g.Expect(perDecode).To(BeNumerically("<=", maxDecodeBytes),
					"%s allocates %d bytes per decode with a memo of %d bytes", c.name, perDecode, memoBytes)
			}
		})
	}
}

// TestLargestLegitimateValueFits checks MaxValueBytes and the token limits
// against the largest value the planned fields allow.
func TestLargestLegitimateValueFits(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	value := largestLegitimate()
	var got testConfig
	g.Expect(NewDecoder(0).Decode(value, &got)).To(Succeed())
	g.Expect(got.SessionTags).To(HaveLen(50))
	g.Expect(got.SessionTags[49].Key).To(HaveLen(128))
	g.Expect(got.SessionTags[49].Value).To(HaveLen(256))
	g.Expect(got.SessionPolicy).To(HaveLen(2048 + 1)) // and the block's line break
	g.Expect(got.PolicyARNs).To(HaveLen(10))
	g.Expect(got.Delegates).To(HaveLen(10))
	g.Expect(len(value)).To(BeNumerically("<", MaxValueBytes*7/8), "keep room to spare")
}
