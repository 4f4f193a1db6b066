# switchboard: the two commands a newcomer needs are `make demo` and `make test`.
# Everything else is a convenience over the CMake presets in CMakePresets.json.

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=
DEMO_ARGS ?=
FUZZ_SECONDS ?= 60

.PHONY: demo test test-asan test-tsan test-asan-load examples bench bench-load fuzz deps configure-release build-release clean

deps:
	scripts/install-deps.sh

# After deps (not beside it), so that `make -j test` never configures before the dependencies are there.
configure-release: deps
	cmake --preset release >/dev/null

build-release: configure-release
	cmake --build --preset release -j $(JOBS)

## make demo: install what is missing, build, and start the flagship demo on loopback.
demo: build-release
	build/release/bin/demo $(DEMO_ARGS)

## make test: install what is missing, build, and run every test.
test: build-release
	ctest --preset release -j $(JOBS) $(CTEST_ARGS)

## The same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS) $(CTEST_ARGS)

## The same tests under ThreadSanitizer.
test-tsan: deps
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS) $(CTEST_ARGS)

## The example servers under AddressSanitizer and UndefinedBehaviorSanitizer, with load, disconnects and a drain.
test-asan-load: deps
	JOBS=$(JOBS) scripts/sanitized-load.sh

## Release binaries of every example at build/release/bin/<example>.
examples: build-release

## Microbenchmarks (Google Benchmark).
bench: build-release
	@for b in build/release/bin/bench_*; do echo "== $$b"; $$b --benchmark_min_time=0.2 || exit 1; done

## Side-by-side load runs against the peers (nginx, Beast, ...); see benchmarks/load/README.md.
bench-load: build-release
	scripts/install-deps.sh --bench
	benchmarks/load/http.sh

## Build the libFuzzer targets and run each for FUZZ_SECONDS on its corpus.
fuzz:
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS)
	tests/fuzz/run-all.sh build/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build
