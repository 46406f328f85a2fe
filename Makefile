# Owns the build: npm packages, the ABI mirror, the WASM kernels (embedded into a generated module),
# strict type-checking, the demo job, the test suites on every runtime, and the benchmarks.
# `make` = install + generate + build WASM (release and debug) + type-check.

NODE_TS := node --import tsx
ASC := node_modules/.bin/asc
KERNEL_SRC := $(wildcard assembly/*.ts)

.PHONY: all deps wasm typecheck demo test test-node test-deno test-bun test-workerd lint bench-serde bench-batch bench-streaming clean

all: deps wasm typecheck

deps: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

assembly/abi.generated.ts bindings/abi.generated.ts: abi/abi.ts scripts/gen-abi.ts | deps
	$(NODE_TS) scripts/gen-abi.ts

# Release: -O3 with SIMD, no asserts. Debug: asserts on, for the differential tests' second pass.
build/kernels.wasm: $(KERNEL_SRC) assembly/abi.generated.ts | deps
	@mkdir -p build
	$(ASC) assembly/index.ts --outFile $@ -O3 --noAssert --enable simd --runtime stub --use abort= --initialMemory 2

build/kernels.debug.wasm: $(KERNEL_SRC) assembly/abi.generated.ts | deps
	@mkdir -p build
	$(ASC) assembly/index.ts --outFile $@ --debug --enable simd --runtime stub --use abort= --initialMemory 2

bindings/wasm.generated.ts: build/kernels.wasm build/kernels.debug.wasm scripts/embed-wasm.ts
	$(NODE_TS) scripts/embed-wasm.ts

wasm: bindings/wasm.generated.ts

typecheck: wasm
	node_modules/.bin/tsc --noEmit -p .

# Portability: no runtime-specific API outside src/platform/; package.json and deno.json export the same.
lint: deps
	$(NODE_TS) scripts/lint-portability.ts
	$(NODE_TS) scripts/check-exports.ts

demo: all
	$(NODE_TS) examples/demo.ts

# Every suite on every runtime; the last line is the combined `N passed, N failed`.
test: all lint
	bash scripts/test-all.sh

# One runtime at a time (FILTER=path-substring narrows the uvu suites).
test-node: all
	node --import tsx test/run.ts $(FILTER)

test-deno: all
	node_modules/.bin/deno run -A test/run.ts $(FILTER)

test-bun: all
	node_modules/.bin/bun test/run.ts $(FILTER)

test-workerd: all
	node --import tsx test/workerd/run.ts

bench-serde: all
	node --import tsx bench/serde.ts

# Sort, join, groupby and external sort vs DuckDB (1 and 2 threads), duckdb-wasm, arquero and plain JS.
# Full size (10M rows; external sort 100M rows in 1 GiB); scale down with ARGS='--scale 0.1'.
bench-batch: all
	node --import tsx bench/batch.ts $(ARGS)

# Streaming: pass-through and keyed sum at parallelism 1 and 2 vs a plain-JS loop and Node streams;
# latency p50/p99 at 100k events/s. A few minutes; ARGS='--reps 3 --latency-seconds 3' shortens it.
bench-streaming: all
	node --expose-gc --import tsx bench/streaming.ts $(ARGS)

clean:
	rm -rf build dist bindings/wasm.generated.ts
