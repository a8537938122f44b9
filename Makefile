GO ?= go

.PHONY: all test unit integration envtest-assets vet fmt-check demo bench bench-lint fuzz

all: test

# The whole suite under the race detector, plus the static checks CI runs:
# the unit tests, then the integration tests against a real kube-apiserver.
# On a fresh machine the first run builds that API server (see
# envtest-assets); later runs reuse it.
test: fmt-check vet unit integration

unit:
	$(GO) test -race -count=1 ./...

# kube-apiserver and etcd for the integration tests, built from the Go module
# proxy into a cache outside the checkout (8-20 min on 2 cores the first
# time, instant after). Prints the directory for KUBEBUILDER_ASSETS.
# IDCHAIN_ENVTEST_DIR, KUBE_VERSION and ETCD_VERSION override the defaults.
envtest-assets:
	@GO=$(GO) bash hack/envtest-assets.sh

# Tests tagged "integration" (test/integration) run envtest with those
# assets; without them they fail and say to run `make envtest-assets`.
integration:
	@assets=$$(GO=$(GO) bash hack/envtest-assets.sh) && \
	echo "KUBEBUILDER_ASSETS=$$assets" && \
	KUBEBUILDER_ASSETS="$$assets" $(GO) test -race -count=1 -tags integration ./test/integration/...

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./test/integration/...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Runs every case of the proposal against in-process fakes of the clouds.
demo:
	$(GO) run ./cmd/idchain demo

# Ours against upstream fluxcd/pkg/auth v0.56.0 on the same fakes (~70 s on
# 2 cores): warm hits by time, the slow scenarios by a fixed iteration count.
bench:
	$(GO) test -run '^$$' -bench . -skip 'Benchmark(ConcurrentDistinctMisses|HitDuringMiss|Fleet)$$' -benchmem ./...
	$(GO) test -run '^$$' -bench 'Benchmark(ConcurrentDistinctMisses|HitDuringMiss)$$' -benchtime=3x -benchmem .
	$(GO) test -run '^$$' -bench 'BenchmarkFleet$$' -benchtime=1x -benchmem .

# idchain lint's throughput on one core (60,000-70,000 ServiceAccounts/s
# on a shared 2-core machine): 24,000 ServiceAccounts in one 5.8 MB file, the same as one List,
# and the reading and the checking parts alone.
bench-lint:
	$(GO) test -run '^$$' -bench 'BenchmarkLint' -cpu 1 -count 3 ./cmd/idchain/

# Coverage-guided fuzzing of everything that reads tenant-written text, each
# target for FUZZTIME (e.g. make fuzz FUZZTIME=10m). `make test` already runs
# every target's seed corpus; new crashers land in testdata/fuzz/ to commit.
FUZZTIME ?= 30s
FUZZ_TARGETS = FuzzDecode:./internal/annotation FuzzPlan:. FuzzGlobMatch:. FuzzLint:./cmd/idchain FuzzDocStream:./cmd/idchain FuzzDecodeServiceAccount:./cmd/idchain FuzzTenant:./internal/quote

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "== $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done
