# Durable Streams in Swift. `make dev` runs it; `make test` builds and runs every test.
SWIFT ?= swift

.PHONY: deps build release dev origin test bench clean

# Debian packages the build needs (zlib headers for compression). Installed only when missing.
deps:
	@if ! dpkg -s zlib1g-dev >/dev/null 2>&1; then \
		echo "installing zlib1g-dev"; \
		apt-get update -qq && apt-get install -y -qq zlib1g-dev; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product durable-streams

dev: release
	.build/release/durable-streams dev

origin: release
	.build/release/durable-streams origin --config origin/origin.conf

# Every test, then the end-to-end protocol suite a second time through an edge node.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --parallel
	DS_TEST_THROUGH_EDGE=1 $(SWIFT) test --skip-build --parallel --filter OriginServerTests

bench: release
	SKIP_BUILD=1 loadtest/bench-origin.sh

clean:
	rm -rf .build
