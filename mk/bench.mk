# Benchmarks. See bench/README.md.
#
#   make bench              passthrough, an empty proxy-wasm filter (the floor
#                           of any filter on the SDK), Envoy jwt_authn (with/without cache),
#                           this filter (with/without token_cache), the native
#                           dynamic module (with/without token_cache) and an
#                           ext_authz service, for HS256 RS256 ES256 EdDSA;
#                           table -> bench/results/latest.md, chart -> latest.png
#   make bench-revocation   0 / 100k / 1M revoked jtis: req/s, RSS, revoke delay;
#                           then revoke -> refused on every one of 4 workers
#                           (the reference feed server, default settings) and
#                           the feed's idle load -> bench/results/revocation.md
#   make bench-wasm         the decision alone, per algorithm, without and with
#                           a warm cache: in V8 (Node, the shipped profile) and
#                           natively; no proxy, so small changes to the
#                           decision code show above the noise
#   make bench-host-calls   what each proxy-wasm host call costs inside Envoy
#                           (bench/host-probe: N calls per request, slope of
#                           Envoy CPU per request over N)
#                           -> bench/results/host-calls.md
#
# Variables:
#   BENCH_SECONDS=10        measured seconds per run (after a warm-up)
#   BENCH_CONNECTIONS=32    wrk connections (one wrk thread)
#   BENCH_ALGS="HS256 RS256 ES256 EdDSA"
#   BENCH_VARIANTS="passthrough wasm_empty jwt_authn jwt_authn_cache wasm wasm_cache native native_cache ext_authz"
#                           (passthrough always runs: it is the reference;
#                           wasm_cache_base: the module BENCH_BASE_WASM names,
#                           say a build of the previous commit, side by side;
#                           native_base, native_base_cache: the same for the
#                           native module, no cache and token_cache 10000,
#                           BENCH_BASE_NATIVE=path/to/libjwt_auth_dynamic_module.so)
#   BENCH_ROUNDS=1          run every variant N times (interleaved); median
#   BENCH_REVOCATION=1      make bench also runs the revocation benchmark
#   BENCH_REVOCATION_SIZES="0 100000 500000 1000000"   BENCH_REVOCATION_TRIALS=30
#   BENCH_REVOCATION_PAIRS=3   load runs per size against the empty list (more
#                           pairs settle the ratio on a noisy machine)
#                           (ten million: BENCH_REVOCATION_SIZES="0 10000000";
#                           several GiB of RAM and a few minutes per size)
#   BENCH_REVOCATION_LATENCY_SECONDS=60   a revocation every 100 ms this long,
#                           4 workers (0 skips it)
#   BENCH_WASM=dist/plugin.wasm  the module measured: by default the shipped one
#                           (`make release`: opt-level z, wasm-opt -Oz), not the
#                           opt-level 3 build the tests load
#   HOST_CALLS_SECONDS=4 HOST_CALLS_ROUNDS=2   bench-host-calls: measured seconds
#                           per run (after 1 s of warm-up), rounds
#   HOST_CALLS_CASES="header_get time ..."     bench-host-calls: only these kinds
#   HOST_CALLS_FIRST_CALL=K  bench-host-calls: only N = 0 and 1, K times a round,
#                           for the first call in a request
#                           -> bench/results/host-calls-first-call.md
#
# Envoy (--concurrency 1) is pinned to core 0, wrk and the native helper
# servers to core 1. Run it on a quiet machine: every other process competes.

.PHONY: bench bench-revocation bench-instructions bench-wasm bench-host-calls bench-tools bench-deps bench-node

BENCH_SECONDS      ?= 10
BENCH_CONNECTIONS  ?= 32
BENCH_ALGS         ?= HS256 RS256 ES256 EdDSA
BENCH_VARIANTS     ?= passthrough wasm_empty jwt_authn jwt_authn_cache wasm wasm_cache native native_cache ext_authz
BENCH_ROUNDS       ?= 1
BENCH_REVOCATION   ?=
BENCH_REVOCATION_SIZES  ?= 0 100000 500000 1000000
BENCH_REVOCATION_TRIALS ?= 30
BENCH_REVOCATION_PAIRS  ?= 3
BENCH_REVOCATION_LATENCY_SECONDS ?= 60
BENCH_WASM         ?= $(DIST)/plugin.wasm
BENCH_TOOL         := $(ROOT)/target/release/jwt-auth-bench

bench_empty :=
bench_space := $(bench_empty) $(bench_empty)
bench_comma := ,
bench_csv = $(subst $(bench_space),$(bench_comma),$(strip $(1)))

export BENCH_TOOL

BENCH_COMMON = --seconds $(BENCH_SECONDS) --connections $(BENCH_CONNECTIONS) \
  --sizes '$(call bench_csv,$(BENCH_REVOCATION_SIZES))' --trials $(BENCH_REVOCATION_TRIALS) \
  --rev-pairs $(BENCH_REVOCATION_PAIRS) --latency-seconds $(BENCH_REVOCATION_LATENCY_SECONDS)

## bench: build everything, install what is missing, run every variant
bench: release .venv bench-tools bench-deps $(if $(filter-out 0 no false,$(BENCH_REVOCATION)),feed-build)
	JWT_AUTH_WASM=$(BENCH_WASM) $(PYTHON) $(ROOT)/bench/run.py bench $(BENCH_COMMON) \
	  --algs '$(call bench_csv,$(BENCH_ALGS))' \
	  --variants '$(call bench_csv,$(BENCH_VARIANTS))' --rounds $(BENCH_ROUNDS) \
	  $(if $(filter-out 0 no false,$(BENCH_REVOCATION)),--revocation)

## bench-revocation: the revocation-scale benchmark on its own
bench-revocation: release .venv bench-tools bench-deps feed-build
	JWT_AUTH_WASM=$(BENCH_WASM) $(PYTHON) $(ROOT)/bench/run.py revocation $(BENCH_COMMON)

## bench-instructions: instructions per request of each variant's Envoy
## under callgrind: the same count on a busy machine as on a quiet one
BENCH_INSTR_REQUESTS ?= 1000
BENCH_INSTR_VARIANTS ?= passthrough jwt_authn jwt_authn_cache native native_cache
bench-instructions: build-native .venv bench-tools bench-deps
	$(PYTHON) $(ROOT)/bench/instructions.py --requests $(BENCH_INSTR_REQUESTS) \
	  --algs '$(call bench_csv,$(BENCH_ALGS))' \
	  --variants '$(call bench_csv,$(BENCH_INSTR_VARIANTS))'

## bench-wasm: the decision alone in V8 (Node) and natively, no proxy
WASM_DECISION := $(ROOT)/target/$(WASM_TARGET)/wasm-release/jwt-auth-wasm-decision.wasm
bench-wasm: toolchain bench-node
	$(CARGO) build --profile wasm-release --target $(WASM_TARGET) -p jwt-auth-wasm-decision
	$(CARGO) build --release -p jwt-auth-wasm-decision
	@echo "in V8 (Node $$(node --version), --no-liftoff; profile wasm-release as shipped), one core:"
	@taskset -c 1 node --no-liftoff --no-warnings $(ROOT)/bench/wasm-decision/run.mjs $(WASM_DECISION)
	@echo "natively (profile release), one core:"
	@taskset -c 1 $(ROOT)/target/release/jwt-auth-wasm-decision

## bench-host-calls: the probe, built and trimmed like the filter, N host
## calls of one kind per request; µs per call = slope over N
HOST_PROBE_WASM    := $(ROOT)/target/$(WASM_TARGET)/release/jwt_auth_host_probe.wasm
HOST_CALLS_SECONDS ?= 4
HOST_CALLS_ROUNDS  ?= 2
HOST_CALLS_CASES   ?=
HOST_CALLS_FIRST_CALL ?=
export HOST_PROBE_WASM
bench-host-calls: .venv bench-tools bench-deps
	$(CARGO) build --release --target $(WASM_TARGET) -p jwt-auth-host-probe
	@$(PYTHON) $(ROOT)/tools/wasm_exports.py $(HOST_PROBE_WASM)
	$(PYTHON) $(ROOT)/bench/host_calls.py --seconds $(HOST_CALLS_SECONDS) \
	  --rounds $(HOST_CALLS_ROUNDS) \
	  $(if $(strip $(HOST_CALLS_CASES)),--cases '$(call bench_csv,$(HOST_CALLS_CASES))') \
	  $(if $(strip $(HOST_CALLS_FIRST_CALL)),--first-call $(HOST_CALLS_FIRST_CALL))

## bench-node: Node (for bench-wasm) from Debian when missing
bench-node:
	@command -v node >/dev/null 2>&1 || { \
	   echo "installing (Debian): nodejs"; \
	   apt-get update -qq; \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 nodejs >/dev/null; }

## bench-tools: the native helper (tokens, ext_authz service, static feed) and
## the empty filter, built and trimmed like the real one
BENCH_EMPTY_WASM := $(ROOT)/target/$(WASM_TARGET)/release/jwt_auth_empty_filter.wasm
export BENCH_EMPTY_WASM
bench-tools: toolchain
	$(CARGO) build --release -p jwt-auth-bench
	$(CARGO) build --release --target $(WASM_TARGET) -p jwt-auth-empty-filter
	@$(PYTHON) $(ROOT)/tools/wasm_exports.py $(BENCH_EMPTY_WASM)

## bench-deps: wrk, gnuplot and taskset from Debian when missing
bench-deps:
	@missing=""; \
	 command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	 command -v gnuplot >/dev/null 2>&1 || missing="$$missing gnuplot-nox"; \
	 command -v taskset >/dev/null 2>&1 || missing="$$missing util-linux"; \
	 command -v valgrind >/dev/null 2>&1 || missing="$$missing valgrind"; \
	 if [ -n "$$missing" ]; then \
	   echo "installing (Debian):$$missing"; \
	   apt-get update -qq; \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 $$missing >/dev/null; \
	 fi
