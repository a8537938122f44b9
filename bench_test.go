package auth_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/cache"
	corev1 "k8s.io/api/core/v1"

	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

// Run with `make bench`. Every benchmark compares ours with upstream on the
// path both can do, object-level IRSA without impersonation, except the
// impersonating fleet, which upstream cannot do. An iteration of the slow
// ones takes up to a few seconds, so the default -benchtime=1s runs each of
// them once or a few times; the Makefile pins small counts with -benchtime=Nx.
// The figures are the custom metrics and the "summary:" lines: nothing here
// asserts on time, only on errors.

// BenchmarkConcurrentDistinctMisses is 40 tenants' first reconcile after a
// controller restart: 40 distinct keys missed at once against an STS that
// answers in 100 ms. Upstream's cache holds one lock across each cloud call,
// so the misses queue; ours makes them side by side. Each iteration starts
// from an empty cache; wall-ms is the time until the last of the 40 has its
// token, ×sts-latency the same in units of one STS call. floor-ms is the
// same 40 misses against an STS without latency: what is left above 1× is
// that CPU (on 2 cores, mostly the fake API server signing 40 Kubernetes
// tokens with RSA and the AWS SDK building 40 clients).
func BenchmarkConcurrentDistinctMisses(b *testing.B) {
	const (
		keys    = 40
		latency = 100 * time.Millisecond
	)
	w := newIRSAWorld(b, keys, latency)
	walls, floors := map[string]time.Duration{}, map[string]time.Duration{}
	for _, c := range benchContenders {
		b.Run(c.name, func(b *testing.B) {
			// Untimed, against an STS that answers at once: the process's
			// first calls pay one-time costs that would land on whoever ran
			// first. The second run is the floor: the same misses without
			// any STS latency, i.e. their CPU and loopback cost.
			missConcurrently(b, c.newCache(b, w.kube)(w.warm.Implementation()), keys)
			floor := missConcurrently(b, c.newCache(b, w.kube)(w.warm.Implementation()), keys)
			b.ResetTimer()
			var total time.Duration
			for range b.N {
				total += missConcurrently(b, c.newCache(b, w.kube)(w.sts.Implementation()), keys)
			}
			wall := total / time.Duration(b.N)
			b.ReportMetric(float64(wall)/float64(time.Millisecond), "wall-ms")
			b.ReportMetric(float64(wall)/float64(latency), "×sts-latency")
			b.ReportMetric(float64(floor)/float64(time.Millisecond), "floor-ms")
			walls[c.name], floors[c.name] = wall, floor
		})
	}
	for _, name := range []string{"ours", "upstream"} {
		summary("distinct misses (%d keys, STS %s), %s: %s = %.1f× STS latency (floor without latency %s)",
			keys, human(latency), name, human(walls[name]), float64(walls[name])/float64(latency), human(floors[name]))
	}
	summary("distinct misses: upstream/ours %s", ratio(float64(walls["upstream"]), float64(walls["ours"])))
}

// missConcurrently gets the tokens of tenants 0..n-1 at once and returns the
// time until the last one arrived.
func missConcurrently(b *testing.B, get tokenGetter, n int) time.Duration {
	b.Helper()
	ctx := context.Background()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			ns := benchNamespace(i)
			_, errs[i] = get(ctx, ns, "app", benchObject(ns, 0))
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	return wall
}

// BenchmarkHitDuringMiss times a hit on a cached key while an unrelated
// key's miss is in flight against an STS that takes 2 s (a second fake STS,
// so the cached key's own STS stays fast). The miss is known to be in flight
// when its AssumeRoleWithWebIdentity is sent (signalingImpl), with no sleep.
// Each iteration uses an empty cache and waits for the slow miss to finish,
// so it costs about 2 s whatever the hit costs: use a small -benchtime=Nx.
// ns/op and hit-µs are the hit alone; B/op and allocs/op count the whole
// iteration (warming the cache, the slow miss and the hit).
func BenchmarkHitDuringMiss(b *testing.B) {
	const slowLatency = 2 * time.Second
	issuer := newBenchIssuer(b)
	fast := startBenchSTS(b, issuer, 0)
	slow := startBenchSTS(b, issuer, slowLatency)
	fast.AllowWebIdentity(benchRole("cached", 0), "cached", "app")
	slow.AllowWebIdentity(benchRole("slow", 0), "slow", "app")
	kube := newBenchKube(issuer,
		tenantSA("cached", "app", map[string]string{"eks.amazonaws.com/role-arn": benchRole("cached", 0)}),
		tenantSA("slow", "app", map[string]string{"eks.amazonaws.com/role-arn": benchRole("slow", 0)}))
	started := make(chan struct{}, 1)
	slowImpl := signalingImpl{AWSImplementation: slow.Implementation(), started: started}
	cachedObj, slowObj := benchObject("cached", 0), benchObject("slow", 0)

	hits := map[string]time.Duration{}
	for _, c := range benchContenders {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			var total time.Duration
			for range b.N {
				bind := c.newCache(b, kube)
				getCached, getSlow := bind(fast.Implementation()), bind(slowImpl)
				if _, err := getCached(ctx, "cached", "app", cachedObj); err != nil {
					b.Fatal(err)
				}
				missDone := make(chan error, 1)
				go func() {
					_, err := getSlow(ctx, "slow", "app", slowObj)
					missDone <- err
				}()
				select {
				case <-started:
				case err := <-missDone:
					b.Fatalf("the slow miss ended before it reached STS: %v", err)
				}

				calls := len(fast.Calls())
				t0 := time.Now()
				_, err := getCached(ctx, "cached", "app", cachedObj)
				total += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				if len(fast.Calls()) != calls {
					b.Fatal("the cached key called STS: not a hit")
				}
				if err := <-missDone; err != nil {
					b.Fatal(err)
				}
			}
			hit := total / time.Duration(b.N)
			b.ReportMetric(float64(hit.Nanoseconds()), "ns/op")
			b.ReportMetric(float64(hit)/float64(time.Microsecond), "hit-µs")
			hits[c.name] = hit
		})
	}
	summary("hit during a %s miss: ours %s, upstream %s, upstream/ours %s",
		human(slowLatency), human(hits["ours"]), human(hits["upstream"]),
		ratio(float64(hits["upstream"]), float64(hits["ours"])))
}

// BenchmarkWarmHits is the steady state: every key cached, 40 tenants
// served round robin, sequentially and from GOMAXPROCS goroutines. A hit
// includes what a reconcile pays besides the cache: reading the
// ServiceAccount from the (fake) client and building the key.
func BenchmarkWarmHits(b *testing.B) {
	const tenants = 40
	w := newIRSAWorld(b, tenants, 0)
	perOp := map[string]time.Duration{}
	for _, mode := range []string{"sequential", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			for _, c := range benchContenders {
				b.Run(c.name, func(b *testing.B) {
					get := c.newCache(b, w.kube)(w.sts.Implementation())
					missConcurrently(b, get, tenants) // warm every key
					hit := func(i int) error {
						ns := benchNamespace(i % tenants)
						_, err := get(context.Background(), ns, "app", benchObject(ns, 0))
						return err
					}
					b.ReportAllocs()
					if mode == "sequential" {
						for i := 0; b.Loop(); i++ {
							if err := hit(i); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						var goroutines atomic.Int64
						b.ResetTimer()
						b.RunParallel(func(pb *testing.PB) {
							for i := int(goroutines.Add(1)) * 7; pb.Next(); i++ {
								if err := hit(i); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					perOp[mode+"/"+c.name] = b.Elapsed() / time.Duration(b.N)
				})
			}
		})
	}
	for _, mode := range []string{"sequential", "parallel"} {
		o, u := perOp[mode+"/ours"], perOp[mode+"/upstream"]
		summary("warm hits, %s: ours %s/op, upstream %s/op, upstream/ours %s",
			mode, human(o), human(u), ratio(float64(u), float64(o)))
	}
}

// The fleet: 2,000 Flux objects in 200 namespaces, reconciled 10 times by 16
// workers. Namespace i has two ServiceAccounts, both with their own source
// role benchRole("source", i):
//
//   - "app" also assumes target role benchRole("target", i%50) from it
//     (useServiceAccount: true). Ours only: upstream cannot impersonate.
//   - "app-irsa" stops at the source role (object-level IRSA), which both do.
//
// Tokens live 1 h and a run takes seconds, so the fewest cloud calls a run
// can make are, per namespace, one AssumeRoleWithWebIdentity, plus one
// AssumeRole for "app" (each namespace's source differs and the session name
// names the ServiceAccount, so no two namespaces can share a target token):
// 400 calls for "assume-role", 200 for "irsa". Each namespace also costs one
// Kubernetes TokenRequest, reported apart as token-requests.
//
// Every round queues the objects in one shuffled order (fixed seed), so the
// first round misses distinct keys side by side and now and then one key
// from several workers at once. The STS answers in 5 ms. Each iteration is a
// whole run from an empty cache: use -benchtime=1x. p50-µs and p99-µs are
// over every GetAccessToken call; round1-ms is the first round's wall time,
// i.e. how long a restarted controller takes to get through its queue.
const (
	fleetNamespaces          = 200
	fleetObjectsPerNamespace = 10
	fleetTargets             = 50
	fleetRounds              = 10
	fleetWorkers             = 16
	fleetSTSLatency          = 5 * time.Millisecond
)

type fleetResult struct {
	cloudCalls, minCalls float64
	p50, p99, round1     time.Duration
}

func BenchmarkFleet(b *testing.B) {
	issuer := newBenchIssuer(b)
	s := startBenchSTS(b, issuer, fleetSTSLatency)
	var sas []*corev1.ServiceAccount
	var objects []cache.InvolvedObject
	for i := range fleetNamespaces {
		ns := benchNamespace(i)
		source, target := benchRole("source", i), benchRole("target", i%fleetTargets)
		sas = append(sas,
			tenantSA(ns, "app", map[string]string{
				"eks.amazonaws.com/role-arn": source,
				aws.AssumeRoleAnnotation:     "roleARN: " + target + "\nuseServiceAccount: true",
			}),
			tenantSA(ns, "app-irsa", map[string]string{"eks.amazonaws.com/role-arn": source}))
		s.AllowWebIdentity(source, ns, "app")
		s.AllowWebIdentity(source, ns, "app-irsa")
		s.AllowAssumeRole(source, target)
		for j := range fleetObjectsPerNamespace {
			objects = append(objects, benchObject(ns, j))
		}
	}
	kube := newBenchKube(issuer, sas...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(objects), func(i, j int) {
		objects[i], objects[j] = objects[j], objects[i]
	})

	results := map[string]fleetResult{}
	run := func(b *testing.B, c contender, sa string, minCalls int) {
		var lat []time.Duration
		var round1 time.Duration
		calls, tokenRequests := fleetCloudCalls(s), kube.TokenRequests()
		for range b.N {
			l, r1 := runFleet(b, c.newCache(b, kube)(s.Implementation()), sa, objects)
			lat, round1 = append(lat, l...), round1+r1
		}
		r := fleetResult{
			cloudCalls: float64(fleetCloudCalls(s)-calls) / float64(b.N),
			minCalls:   float64(minCalls),
			round1:     round1 / time.Duration(b.N),
		}
		sorted := sortedCopy(lat)
		r.p50, r.p99 = percentile(sorted, 0.50), percentile(sorted, 0.99)
		b.ReportMetric(r.cloudCalls, "cloud-calls")
		b.ReportMetric(r.minCalls, "min-calls")
		b.ReportMetric(r.cloudCalls/r.minCalls, "calls/min")
		b.ReportMetric(float64(kube.TokenRequests()-tokenRequests)/float64(b.N), "token-requests")
		b.ReportMetric(float64(r.p50)/float64(time.Microsecond), "p50-µs")
		b.ReportMetric(float64(r.p99)/float64(time.Microsecond), "p99-µs")
		b.ReportMetric(float64(r.round1)/float64(time.Millisecond), "round1-ms")
		results[b.Name()] = r
	}
	b.Run("assume-role", func(b *testing.B) {
		b.Run("ours", func(b *testing.B) { run(b, oursContender, "app", 2*fleetNamespaces) })
	})
	b.Run("irsa", func(b *testing.B) {
		for _, c := range benchContenders {
			b.Run(c.name, func(b *testing.B) { run(b, c, "app-irsa", fleetNamespaces) })
		}
	})

	line := func(name string) string {
		r := results["BenchmarkFleet/"+name]
		if r.minCalls == 0 {
			return name + ": n/a"
		}
		return fmt.Sprintf("%s: %.0f cloud calls (%.2f× min), p50 %s, p99 %s, first round %s",
			name, r.cloudCalls, r.cloudCalls/r.minCalls, human(r.p50), human(r.p99), human(r.round1))
	}
	o, u := results["BenchmarkFleet/irsa/ours"], results["BenchmarkFleet/irsa/upstream"]
	summary("fleet (%d objects in %d namespaces, %d target roles, %d rounds, %d workers, STS %s):",
		len(objects), fleetNamespaces, fleetTargets, fleetRounds, fleetWorkers, human(fleetSTSLatency))
	summary("  %s", line("assume-role/ours"))
	summary("  %s", line("irsa/ours"))
	summary("  %s", line("irsa/upstream"))
	summary("  irsa upstream/ours: p50 %s, p99 %s, first round %s", ratio(float64(u.p50), float64(o.p50)),
		ratio(float64(u.p99), float64(o.p99)), ratio(float64(u.round1), float64(o.round1)))
}

// runFleet reconciles objects fleetRounds times with fleetWorkers workers,
// through ServiceAccount sa of each object's namespace. It returns the
// latency of every call and the wall time of the first round.
func runFleet(b *testing.B, get tokenGetter, sa string, objects []cache.InvolvedObject) ([]time.Duration, time.Duration) {
	b.Helper()
	ctx := context.Background()
	lat := make([]time.Duration, fleetRounds*len(objects))
	var round1 time.Duration
	for round := range fleetRounds {
		var next atomic.Int64
		var firstErr atomic.Pointer[error]
		var wg sync.WaitGroup
		t0 := time.Now()
		for range fleetWorkers {
			wg.Go(func() {
				for {
					j := int(next.Add(1) - 1)
					if j >= len(objects) {
						return
					}
					o := objects[j]
					t0 := time.Now()
					_, err := get(ctx, o.Namespace, sa, o)
					lat[round*len(objects)+j] = time.Since(t0)
					if err != nil {
						firstErr.CompareAndSwap(nil, &err)
					}
				}
			})
		}
		wg.Wait()
		if round == 0 {
			round1 = time.Since(t0)
		}
		if err := firstErr.Load(); err != nil {
			b.Fatal(*err)
		}
	}
	return lat, round1
}

func fleetCloudCalls(s *fakes.AWSSTS) int {
	return s.Count("AssumeRoleWithWebIdentity") + s.Count("AssumeRole") + s.Count("GetCallerIdentity")
}
