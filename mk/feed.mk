# revocation-feed server and the revocation-protocol crate.
#
#   make feed-build   release binary: target/release/revocation-feed
#   make feed-test    protocol + feed tests (installs redis-server when missing),
#                     and the protocol crate built for wasm32-wasip1
#   make feed-bench   throughput benchmark (embedded and Redis); prints tables

.PHONY: feed-build feed-test feed-bench feed-redis-server

# The Redis half of the feed tests fails without redis-server; `make test`
# runs them too, so it gets the same prerequisite.
TEST_DEPS += feed-redis-server

feed-redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package) for the feed tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	}
	@redis-server --version

feed-build:
	$(CARGO) build --release -p revocation-feed
	@ls -l $(ROOT)/target/release/revocation-feed

feed-test: feed-redis-server toolchain
	$(CARGO) build -p revocation-protocol --target $(WASM_TARGET)
	$(CARGO) test -p revocation-protocol -p revocation-feed

# The bench profile inherits release's fat LTO and single codegen unit, which
# take minutes to link on two cores; the figures barely move without them.
feed-bench: feed-redis-server
	CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 \
	  $(CARGO) bench -p revocation-feed --bench feed_bench
