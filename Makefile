GO ?= go

.PHONY: all test vet fmt-check demo bench fuzz

all: test

# The whole suite under the race detector, plus the static checks CI runs.
test: fmt-check vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

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

# Coverage-guided fuzzing of everything that reads tenant-written text, each
# target for FUZZTIME (e.g. make fuzz FUZZTIME=10m). `make test` already runs
# every target's seed corpus; new crashers land in testdata/fuzz/ to commit.
FUZZTIME ?= 30s
FUZZ_TARGETS = FuzzDecode:./internal/annotation FuzzPlan:. FuzzLint:./cmd/idchain FuzzTenant:./internal/quote

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "== $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done
