package auth

import (
	"fmt"

	"github.com/fluxcd/pkg/cache"
	"github.com/prometheus/client_golang/prometheus"
)

// tokenCacheMetrics are the TokenCache's Prometheus metrics. The first four
// keep the names and labels of fluxcd/pkg/cache, so dashboards built for the
// upstream token cache keep working; the token_cache_* ones are ours.
//
// Every method is safe on a nil receiver, which is how metrics are turned off.
type tokenCacheMetrics struct {
	events          *prometheus.CounterVec // <prefix>cache_events_total
	requestsSuccess prometheus.Counter     // <prefix>cache_requests_total{status="success"}
	requestsFailure prometheus.Counter     // <prefix>cache_requests_total{status="failure"}
	items           prometheus.Gauge       // <prefix>cached_items
	evictions       prometheus.Counter     // <prefix>cache_evictions_total

	fetchErrors       prometheus.Counter // <prefix>token_cache_fetch_errors_total
	inflight          prometheus.Gauge   // <prefix>token_cache_inflight_fetches
	refreshesSuccess  prometheus.Counter // <prefix>token_cache_refreshes_total{result="success"}
	refreshesFailures prometheus.Counter // <prefix>token_cache_refreshes_total{result="failure"}

	policyDenials *prometheus.CounterVec // <prefix>policy_denials_total{namespace}
}

func newTokenCacheMetrics(r prometheus.Registerer, prefix string) (*tokenCacheMetrics, error) {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prefix + "cache_events_total",
		Help: "Total number of cache retrieval events for a Gitops Toolkit resource reconciliation.",
	}, []string{"event_type", "kind", "name", "namespace", "operation"})
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prefix + "cache_requests_total",
		Help: "Total number of cache requests partioned by success or failure.",
	}, []string{"status"})
	items := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: prefix + "cached_items",
		Help: "Total number of items in the cache.",
	})
	evictions := prometheus.NewCounter(prometheus.CounterOpts{
		Name: prefix + "cache_evictions_total",
		Help: "Total number of cache evictions.",
	})
	fetchErrors := prometheus.NewCounter(prometheus.CounterOpts{
		Name: prefix + "token_cache_fetch_errors_total",
		Help: "Total number of failed token fetches, including failed refreshes hidden from callers.",
	})
	inflight := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: prefix + "token_cache_inflight_fetches",
		Help: "Number of token fetches in progress.",
	})
	refreshes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prefix + "token_cache_refreshes_total",
		Help: "Total number of fetches that replace a cached token, partitioned by result.",
	}, []string{"result"})

	policyDenials := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prefix + "policy_denials_total",
		Help: "Total number of impersonations refused by the impersonation policy, by namespace of the object.",
	}, []string{"namespace"})

	// Register all or nothing, so a failed NewTokenCache leaves the
	// registerer as it was and can be retried.
	var done []prometheus.Collector
	for _, col := range []prometheus.Collector{events, requests, items, evictions, fetchErrors, inflight, refreshes, policyDenials} {
		if err := r.Register(col); err != nil {
			for _, d := range done {
				r.Unregister(d)
			}
			return nil, fmt.Errorf("failed to register token cache metrics with prefix '%s': %w. "+
				"give each TokenCache its own prefix (CacheMetricsPrefix) or registerer", prefix, err)
		}
		done = append(done, col)
	}

	return &tokenCacheMetrics{
		events:            events,
		requestsSuccess:   requests.WithLabelValues(cache.StatusSuccess),
		requestsFailure:   requests.WithLabelValues(cache.StatusFailure),
		items:             items,
		evictions:         evictions,
		fetchErrors:       fetchErrors,
		inflight:          inflight,
		policyDenials:     policyDenials,
		refreshesSuccess:  refreshes.WithLabelValues(cache.StatusSuccess),
		refreshesFailures: refreshes.WithLabelValues(cache.StatusFailure),
	}, nil
}

// recordRequest counts one getOrFetch call, and a hit or miss for obj as
// upstream does: only for a named kind.
func (m *tokenCacheMetrics) recordRequest(obj cache.InvolvedObject, hit bool, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.requestsFailure.Inc()
	} else {
		m.requestsSuccess.Inc()
	}
	if obj.Kind == "" {
		return
	}
	event := cache.CacheEventTypeMiss
	if hit {
		event = cache.CacheEventTypeHit
	}
	m.events.WithLabelValues(event, obj.Kind, obj.Name, obj.Namespace, obj.Operation).Inc()
}

func (m *tokenCacheMetrics) deleteEvents(kind, name, namespace, operation string) {
	if m == nil {
		return
	}
	for _, event := range []string{cache.CacheEventTypeMiss, cache.CacheEventTypeHit} {
		m.events.DeleteLabelValues(event, kind, name, namespace, operation)
	}
}

func (m *tokenCacheMetrics) fetchStarted() {
	if m != nil {
		m.inflight.Inc()
	}
}

func (m *tokenCacheMetrics) fetchFinished() {
	if m != nil {
		m.inflight.Dec()
	}
}

// recordFetch counts a finished fetch; refresh says it was to replace a
// cached token rather than to fill a miss.
func (m *tokenCacheMetrics) recordFetch(refresh bool, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.fetchErrors.Inc()
	}
	switch {
	case !refresh:
	case err != nil:
		m.refreshesFailures.Inc()
	default:
		m.refreshesSuccess.Inc()
	}
}

// recordStore counts a stored token. Deltas rather than a Set of the
// length keep the gauge exact when stores race, without holding the lock.
func (m *tokenCacheMetrics) recordStore(replaced, evicted bool) {
	switch {
	case m == nil:
	case evicted:
		m.evictions.Inc() // one out, one in: the count is unchanged
	case !replaced:
		m.items.Inc()
	}
}

// recordPolicyDenial counts a refusal by the impersonation policy.
func (m *tokenCacheMetrics) recordPolicyDenial(namespace string) {
	if m == nil {
		return
	}
	m.policyDenials.WithLabelValues(namespace).Inc()
}
