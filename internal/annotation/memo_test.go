package annotation

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
)

func TestMemoHitIsACopy(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	d := NewDecoder(DefaultMemoBytes)
	const value = "roleARN: a\nuseServiceAccount: true\npolicyARNs: [p]\nlabels: {k: v}\nsessionTags: [{key: k, value: v}]\nsource: {roleARN: s}"
	want := testConfig{RoleARN: "a", UseServiceAccount: ptr.To(true), PolicyARNs: []string{"p"},
		Labels: map[string]string{"k": "v"}, SessionTags: []testTag{{"k", "v"}}, Source: &testSource{RoleARN: "s"}}

	var first testConfig
	g.Expect(d.Decode(value, &first)).To(Succeed())
	g.Expect(first).To(Equal(want))
	// A caller changing what it got must not change what the next one gets.
	*first.UseServiceAccount = false
	first.PolicyARNs[0] = "changed"
	first.Labels["k"] = "changed"
	first.SessionTags[0].Key = "changed"
	first.Source.RoleARN = "changed"

	second := testConfig{ExternalID: "stale"}
	g.Expect(d.Decode(value, &second)).To(Succeed())
	g.Expect(second).To(Equal(want), "a hit sets all of out, zeroing what the value does not set")
	entries, _ := d.memo.stats()
	g.Expect(entries).To(Equal(1))
}

// TestMemoHitDoesNotParse checks the cost of a hit: a parse allocates tens
// of times; a hit allocates only the copies of pointers, slices and maps.
// AllocsPerRun refuses to run in parallel.
func TestMemoHitDoesNotParse(t *testing.T) {
	g := NewWithT(t)
	d := NewDecoder(DefaultMemoBytes)
	const value = "roleARN: " + roleARN + "\nexternalID: x\n"
	out := new(testConfig)
	g.Expect(d.Decode(value, out)).To(Succeed())
	g.Expect(testing.AllocsPerRun(100, func() { _ = d.Decode(value, out) })).To(BeZero())
	g.Expect(testing.AllocsPerRun(10, func() { _ = NewDecoder(0).Decode(value, out) })).To(BeNumerically(">", 20))
}

func TestMemoNeverHoldsFailures(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	d := NewDecoder(DefaultMemoBytes)
	// The six 253 KB values, and values that parse but fail.
	for i := range 6 {
		var out testConfig
		g.Expect(d.Decode(fmt.Sprintf("roleARN: %d%s", i, strings.Repeat("x", 253<<10)), &out)).NotTo(Succeed())
	}
	for _, v := range []string{"roleARN: [a]", "unknown: x", "a: &a x", "roleARN: a\nroleARN: a"} {
		var out testConfig
		g.Expect(d.Decode(v, &out)).NotTo(Succeed())
	}
	entries, used := d.memo.stats()
	g.Expect(entries).To(BeZero())
	g.Expect(used).To(BeZero())
}

func TestMemoBoundInBytes(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	const budget = 64 << 10
	d := NewDecoder(budget)
	for i := range 2000 {
		var out testConfig
		value := fmt.Sprintf("roleARN: role-%d\nexternalID: e%s", i, strings.Repeat("e", i%500))
		g.Expect(d.Decode(value, &out)).To(Succeed())
		_, used := d.memo.stats()
		g.Expect(used).To(BeNumerically("<=", budget))
	}
	// Values too large for an eighth of the budget are decoded, not kept.
	var out testConfig
	g.Expect(d.Decode("roleARN: "+strings.Repeat("r", budget/8), &out)).To(Succeed())
	_, used := d.memo.stats()
	g.Expect(used).To(BeNumerically("<=", budget))
	g.Expect(d.memo.get(reflect.TypeOf(out), "roleARN: "+strings.Repeat("r", budget/8))).To(BeNil())
}

// TestMemoEvictionDropsMemory checks that an evicted entry leaves neither
// the map nor the clock, so its key and value can be collected.
func TestMemoEvictionDropsMemory(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	m := newMemo(8 * 1024)
	p, err := planFor(reflect.TypeOf(testConfig{}))
	g.Expect(err).NotTo(HaveOccurred())
	for i := range 500 {
		v := fmt.Sprintf("roleARN: %d", i)
		m.put(p, v, reflect.ValueOf(testConfig{RoleARN: v}), 16)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	g.Expect(m.entries).To(HaveLen(len(m.ring)))
	g.Expect(m.used).To(BeNumerically("<=", m.max))
	sum := 0
	for _, e := range m.ring {
		g.Expect(m.entries).To(HaveKeyWithValue(e.key, e))
		sum += e.size
	}
	g.Expect(sum).To(Equal(m.used))
	for _, e := range m.ring[len(m.ring):cap(m.ring)] {
		g.Expect(e).To(BeNil(), "an evicted entry stays reachable from the clock's spare capacity")
	}
	g.Expect(m.entries).NotTo(HaveKey(memoKey{p.typ, "roleARN: 0"}))
}

// TestMemoKeepsHotValues checks the CLOCK policy: a value hit between
// insertions survives a tenant churning distinct values through the memo.
func TestMemoKeepsHotValues(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	d := NewDecoder(16 << 10)
	const hot = "roleARN: " + roleARN
	var out testConfig
	g.Expect(d.Decode(hot, &out)).To(Succeed())
	for i := range 5000 {
		g.Expect(d.Decode(hot, &out)).To(Succeed())
		g.Expect(d.Decode(fmt.Sprintf("roleARN: churn-%d", i), &out)).To(Succeed())
	}
	g.Expect(d.memo.get(reflect.TypeOf(out), hot)).NotTo(BeNil())
}

func TestMemoKeysByType(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	type other struct {
		RoleARN string `json:"roleARN"`
	}
	d := NewDecoder(DefaultMemoBytes)
	var a testConfig
	var b other
	g.Expect(d.Decode("roleARN: x", &a)).To(Succeed())
	g.Expect(d.Decode("roleARN: x", &b)).To(Succeed())
	g.Expect(a.RoleARN).To(Equal("x"))
	g.Expect(b.RoleARN).To(Equal("x"))
	entries, _ := d.memo.stats()
	g.Expect(entries).To(Equal(2))
}

func TestMemoDisabled(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	d := NewDecoder(0)
	var out testConfig
	g.Expect(d.Decode("roleARN: x", &out)).To(Succeed())
	entries, used := d.memo.stats()
	g.Expect(entries).To(BeZero())
	g.Expect(used).To(BeZero())
}

// TestMemoConcurrent runs hits, misses and evictions at once, for -race.
func TestMemoConcurrent(t *testing.T) {
	t.Parallel()
	d := NewDecoder(4 << 10)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			g := NewWithT(t)
			for i := range 300 {
				n := (i * (w + 1)) % 40
				var out testConfig
				err := d.Decode(fmt.Sprintf("roleARN: r%d\npolicyARNs: [p%d]\nuseServiceAccount: true", n, n), &out)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(out.RoleARN).To(Equal(fmt.Sprintf("r%d", n)))
				g.Expect(out.PolicyARNs).To(Equal([]string{fmt.Sprintf("p%d", n)}))
				out.PolicyARNs[0] = "mine"
				*out.UseServiceAccount = false
			}
		})
	}
	wg.Wait()
}
