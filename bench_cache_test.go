package auth

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fluxauth "github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/cache"
	"github.com/prometheus/client_golang/prometheus"
)

// The TokenCache on its own, without the chain or any fake cloud. `make
// bench` runs these with the default -benchtime; each finishes in a few
// seconds. The figures to read are the custom metrics: nothing here asserts
// on time.

// benchCapacities are the cache sizes that showed the old full-map eviction
// scan: inserts into a full cache fell from ~10k/s at 1k entries to 25/s at
// 100k, and hits waited behind the scan's write lock.
var benchCapacities = []int{1_000, 20_000, 100_000}

func benchCapacityName(capacity int) string {
	return fmt.Sprintf("cap=%dk", capacity/1000)
}

// benchFetch returns tokens of lifetime d at once, and counts the calls.
func benchFetch(calls *atomic.Int64, d time.Duration) func(context.Context) (fluxauth.Token, error) {
	tok := &cacheTestToken{id: "bench", d: d}
	return func(context.Context) (fluxauth.Token, error) {
		calls.Add(1)
		return tok, nil
	}
}

// newFullBenchCache returns a cache holding capacity long-lived tokens under
// the keys "key-0" to "key-<capacity-1>".
func newFullBenchCache(b *testing.B, capacity int, fetch func(context.Context) (fluxauth.Token, error)) *TokenCache {
	b.Helper()
	c, err := NewTokenCache(capacity)
	if err != nil {
		b.Fatal(err)
	}
	for i := range capacity {
		if _, _, err := c.getOrFetch(context.Background(), "key-"+strconv.Itoa(i), cache.InvolvedObject{}, fetch); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkTokenCacheInsertFull is a miss on a new key in a full cache: one
// fetch (instant here), one store, one eviction. inserts/s must not fall as
// the capacity grows.
func BenchmarkTokenCacheInsertFull(b *testing.B) {
	for _, capacity := range benchCapacities {
		b.Run(benchCapacityName(capacity), func(b *testing.B) {
			var calls atomic.Int64
			fetch := benchFetch(&calls, time.Hour)
			c := newFullBenchCache(b, capacity, fetch)
			ctx := context.Background()
			next := capacity
			for b.Loop() {
				if _, _, err := c.getOrFetch(ctx, "key-"+strconv.Itoa(next), cache.InvolvedObject{}, fetch); err != nil {
					b.Fatal(err)
				}
				next++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
			if c.Len() != capacity {
				b.Fatalf("cache holds %d tokens, want its capacity %d", c.Len(), capacity)
			}
		})
	}
}

// BenchmarkTokenCacheHit is a hit on one key. "ours" and "upstream" compare
// with fluxcd/pkg/cache's TokenCache, which takes a cache-wide exclusive lock
// on every hit. The cap=… cases hit a hot key in a full cache while another
// goroutine keeps inserting new keys into it, the steady state of a busy
// controller: hit ns/op must not depend on the capacity.
func BenchmarkTokenCacheHit(b *testing.B) {
	tok := &cacheTestToken{id: "a", d: time.Hour}
	fetch := func(context.Context) (fluxauth.Token, error) { return tok, nil }
	obj := cache.InvolvedObject{Kind: "OCIRepository", Name: "podinfo", Namespace: "apps", Operation: "reconcile"}
	ctx := context.Background()

	b.Run("ours", func(b *testing.B) {
		c, _ := NewTokenCache(1)
		_, _, _ = c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetch)
		for b.Loop() {
			_, _, _ = c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetch)
		}
	})
	b.Run("ours with metrics", func(b *testing.B) {
		c, _ := NewTokenCache(1, CacheMetricsRegisterer(prometheus.NewRegistry()))
		_, _, _ = c.getOrFetch(ctx, "k", obj, fetch)
		for b.Loop() {
			_, _, _ = c.getOrFetch(ctx, "k", obj, fetch)
		}
	})
	b.Run("upstream", func(b *testing.B) {
		c, _ := cache.NewTokenCache(1)
		upFetch := func(context.Context) (cache.Token, error) { return tok, nil }
		_, _, _ = c.GetOrSet(ctx, "k", upFetch)
		for b.Loop() {
			_, _, _ = c.GetOrSet(ctx, "k", upFetch)
		}
	})

	for _, capacity := range benchCapacities {
		b.Run(benchCapacityName(capacity), func(b *testing.B) {
			c := newFullBenchCache(b, capacity, fetch)
			stop, inserts := churn(c, capacity, fetch)
			var misses int
			for b.Loop() {
				if _, hit, _ := c.getOrFetch(ctx, "key-0", cache.InvolvedObject{}, fetch); !hit {
					misses++
				}
			}
			elapsed := b.Elapsed()
			stop()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "hits/s")
			b.ReportMetric(float64(inserts.Load())/elapsed.Seconds(), "inserts/s")
			b.ReportMetric(float64(misses), "hot-key-misses")
		})
	}
}

// churn inserts new keys into c from another goroutine until stop is called.
func churn(c *TokenCache, first int, fetch func(context.Context) (fluxauth.Token, error)) (stop func(), inserts *atomic.Int64) {
	inserts = new(atomic.Int64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for next := first; ; next++ {
			select {
			case <-done:
				return
			default:
			}
			_, _, _ = c.getOrFetch(context.Background(), "key-"+strconv.Itoa(next), cache.InvolvedObject{}, fetch)
			inserts.Add(1)
		}
	})
	return func() { close(done); wg.Wait() }, inserts
}

func BenchmarkTokenCacheHitParallel(b *testing.B) {
	const keys = 1024
	tok := &cacheTestToken{id: "a", d: time.Hour}
	fetch := func(context.Context) (fluxauth.Token, error) { return tok, nil }
	ctx := context.Background()
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("key-%d", i)
	}

	b.Run("ours", func(b *testing.B) {
		c, _ := NewTokenCache(keys)
		for _, k := range names {
			_, _, _ = c.getOrFetch(ctx, k, cache.InvolvedObject{}, fetch)
		}
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				_, _, _ = c.getOrFetch(ctx, names[i%keys], cache.InvolvedObject{}, fetch)
			}
		})
	})
	b.Run("ours one hot key", func(b *testing.B) {
		c, _ := NewTokenCache(1)
		_, _, _ = c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetch)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _, _ = c.getOrFetch(ctx, "k", cache.InvolvedObject{}, fetch)
			}
		})
	})
	b.Run("upstream", func(b *testing.B) {
		c, _ := cache.NewTokenCache(keys)
		upFetch := func(context.Context) (cache.Token, error) { return tok, nil }
		for _, k := range names {
			_, _, _ = c.GetOrSet(ctx, k, upFetch)
		}
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				_, _, _ = c.GetOrSet(ctx, names[i%keys], upFetch)
			}
		})
	})
}

// BenchmarkTokenCacheLoad is many reconcilers on a cache far too small for
// its keys, with tokens that live two seconds: most calls miss and evict,
// hot keys are refreshed in the background, and concurrent misses share
// fetches. One iteration is the whole load. errors must be 0 (the fake
// upstream never fails), and goroutines and heap must come back to where
// they were once the load is over.
func BenchmarkTokenCacheLoad(b *testing.B) {
	const (
		workers        = 64
		callsPerWorker = 10_000
		keys           = 1_000
		capacity       = 200
		lifetime       = 2 * time.Second
	)
	names := make([]string, keys)
	for i := range names {
		names[i] = "key-" + strconv.Itoa(i)
	}
	var calls atomic.Int64
	fetch := benchFetch(&calls, lifetime)

	goroutinesBefore, heapBefore := settledGoroutines(0), heapInUse()
	var errs atomic.Int64
	for b.Loop() {
		c, err := NewTokenCache(capacity)
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(w), 0))
				for range callsPerWorker {
					if _, _, err := c.getOrFetch(context.Background(), names[rnd.IntN(keys)], cache.InvolvedObject{}, fetch); err != nil {
						errs.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if c.Len() > capacity {
			b.Fatalf("cache holds %d tokens, more than its capacity %d", c.Len(), capacity)
		}
	}
	ops := float64(b.N * workers * callsPerWorker)
	b.ReportMetric(ops/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(errs.Load()), "errors")
	b.ReportMetric(float64(calls.Load())/ops, "upstream-calls/call")
	b.ReportMetric(float64(goroutinesBefore), "goroutines-before")
	b.ReportMetric(float64(settledGoroutines(goroutinesBefore)), "goroutines-after")
	b.ReportMetric(float64(heapBefore)/(1<<20), "heap-MiB-before")
	b.ReportMetric(float64(heapInUse())/(1<<20), "heap-MiB-after")
}

// settledGoroutines counts goroutines once they are down to want, or after a
// second: background refreshes started by the last calls may still be
// finishing. Polling is fine in a benchmark, which asserts nothing.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
