# limiquantix. `make run` sets up and starts lqd with embedded defaults; `make test` runs the
# whole suite (unit and integration: real qemu under TCG, needs root).
export PATH := /usr/local/go/bin:$(PATH)

GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# lqd's defaults are /var/lib/limiquantix and /run/limiquantix; override for a sandbox.
LQD_ARGS ?=

.PHONY: all build deps test-deps ui run test unit bench lint clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

deps:
	./deploy/deps.sh

test-deps:
	./deploy/deps.sh --test

# The web UI (webui/, React + Vite) is embedded into lqd with go:embed; without npm, lqd
# still builds and serves a page that says how to build it.
ui:
	cd webui && npm ci --no-audit --no-fund && npm run build

run: deps
	@if command -v npm >/dev/null; then $(MAKE) ui; else echo "npm not found: lqd will serve a placeholder UI"; fi
	$(MAKE) build
	./bin/lqd $(LQD_ARGS)

# The whole suite; .ci/run calls exactly this. Integration tests need root, qemu and the
# cached test guests (built on first use from Debian packages, see integration/images/).
test: test-deps ui build
	cd webui && npm test
	LQ_REQUIRE_INTEGRATION=1 $(GO) test -count=1 -timeout 40m ./...

# Unit tests only: no root, no qemu.
unit:
	$(GO) test -count=1 -short ./...

# Benchmarks, each side by side with its baseline in the same run (raw qemu, qemu-img, a
# direct socket, no firewall), reported as ratios. Micro-benchmarks run for the usual
# second; the ones that boot guests or move gigabytes run once.
bench: test-deps build
	$(GO) test -count=1 -run '^$$' -bench . ./api/ ./vmm/
	LQ_REQUIRE_INTEGRATION=1 $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 40m ./integration/ ./netdev/firewall/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

clean:
	rm -rf bin
