# Durable Streams in Swift. `make dev` runs it; `make test` builds and runs every test.
SWIFT ?= swift

.PHONY: deps build release dev origin test bench fuzz fuzz-build clean

# Debian packages the build needs (zlib headers for compression, LMDB for the file-backed store;
# openssl makes the certificates of the reload check).
# Only the missing ones are installed, with one apt-get update for all of them.
DEB_PACKAGES := zlib1g-dev liblmdb-dev openssl

deps:
	@missing=""; \
	for pkg in $(DEB_PACKAGES); do \
		dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

# Release builds (what `make dev`, the benchmarks and deploy/Containerfile run) leave out the
# runtime exclusivity checks, in every module including swift-nio's: on a 1 KiB cache hit over
# TLS they cost the edge about a tenth of its CPU (loadtest/README.md). The compiler still proves
# exclusivity statically; the debug build `make test` runs keeps the runtime checks, so a
# violation the tests reach traps there.
RELEASE_FLAGS := -Xswiftc -enforce-exclusivity=unchecked

release: deps
	$(SWIFT) build -c release --product durable-streams $(RELEASE_FLAGS)

dev: release
	.build/release/durable-streams dev

origin: release
	.build/release/durable-streams origin --config origin/origin.conf

# Every test; the end-to-end protocol suite again through an edge node, and again on the
# durable file store; then a short crash run: kill -9 of a file-backed origin at random
# instants, checking every acknowledged append survives exactly once (loadtest/crash-harness.py),
# and a real full disk (a 4 MiB tmpfs) under a file-backed origin (loadtest/disk-full-check.sh);
# SIGHUP under traffic to a TLS origin and a verifying edge, rotating certificates and keys, then
# SIGTERM (loadtest/reload-check.py); the systemd units under deploy/ through systemd-analyze verify;
# and the Prometheus rules and Grafana dashboard (deploy/prometheus/check.sh: promtool check and unit
# tests, then a real Prometheus scraping an edge, whose hit-ratio rule must match the edge's counters);
# and the dashboards rendered by headless Chromium against an origin and two edges under traffic
# (loadtest/dashboard-check.py: charts hold points, tiles and fleet sums match /__edge/stats).
CRASH_CYCLES ?= 10
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --parallel
	DS_TEST_THROUGH_EDGE=1 $(SWIFT) test --skip-build --parallel --filter OriginServerTests
	DS_TEST_STORE=file $(SWIFT) test --skip-build --parallel --filter OriginServerTests
	python3 loadtest/crash-harness.py --binary "$$($(SWIFT) build --show-bin-path)/durable-streams" \
		--cycles $(CRASH_CYCLES) --time-limit 600
	loadtest/disk-full-check.sh "$$($(SWIFT) build --show-bin-path)/durable-streams"
	python3 loadtest/reload-check.py --binary "$$($(SWIFT) build --show-bin-path)/durable-streams" --seconds 60
	deploy/verify-units.sh "$$($(SWIFT) build --show-bin-path)/durable-streams"
	deploy/prometheus/check.sh "$$($(SWIFT) build --show-bin-path)/durable-streams"
	python3 loadtest/dashboard-check.py --binary "$$($(SWIFT) build --show-bin-path)/durable-streams"

bench: release
	SKIP_BUILD=1 loadtest/bench-origin.sh

# Fuzzing (libFuzzer, shipped with the Swift toolchain). One release build of the
# `durable-streams-fuzz` product with the fuzzer and AddressSanitizer, in its own scratch path;
# then each target in Tests/FuzzCorpus/ runs for FUZZ_SECONDS on local CPU, one after another.
# New corpus entries go to $(FUZZ_SCRATCH)/corpus/<target> (not the repo); crash, timeout and
# out-of-memory inputs land in Tests/FuzzCorpus/<target>/, where `make test` replays them.
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 4096
FUZZ_TARGET ?=
FUZZ_SCRATCH := .build-fuzz
FUZZ_TARGETS := $(if $(FUZZ_TARGET),$(FUZZ_TARGET),$(notdir $(wildcard Tests/FuzzCorpus/*)))
# Swift code gets coverage through -sanitize=fuzzer; the C and C++ dependencies (the TOML parser
# is C++) through -fsanitize=fuzzer-no-link. FUZZING swaps the replay tool's main for the entry point.
FUZZ_BUILD_FLAGS := -c release --scratch-path $(FUZZ_SCRATCH) --product durable-streams-fuzz \
	-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING \
	-Xcc -fsanitize=fuzzer-no-link,address -Xcxx -fsanitize=fuzzer-no-link,address

fuzz-build: deps
	$(SWIFT) build $(FUZZ_BUILD_FLAGS)

fuzz: fuzz-build
	@set -e; bin="$$($(SWIFT) build $(FUZZ_BUILD_FLAGS) --show-bin-path)/durable-streams-fuzz"; \
	for target in $(FUZZ_TARGETS); do \
		test -d "Tests/FuzzCorpus/$$target" || { echo "no target or corpus named '$$target'"; exit 2; }; \
		mkdir -p "$(FUZZ_SCRATCH)/corpus/$$target"; \
		echo "== $$target: $(FUZZ_SECONDS) s"; \
		DS_FUZZ_TARGET="$$target" SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 "$$bin" \
			-max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix="Tests/FuzzCorpus/$$target/" \
			"$(FUZZ_SCRATCH)/corpus/$$target" "Tests/FuzzCorpus/$$target"; \
	done

clean:
	rm -rf .build $(FUZZ_SCRATCH)
