# The native build: jwt-auth as an Envoy dynamic module (dynamic-module/),
# a shared library for envoy.filters.http.dynamic_modules of Envoy 1.40.
#
#   make build-native   target/release/libjwt_auth_dynamic_module.so
#   make test-native    the end-to-end suites of decisions, stripping, rules,
#                       remote keys and revocation again, against the native
#                       module (part of `make test`)
#
# The test kit picks the build with JWT_AUTH_MODULE=wasm|native (default
# wasm) and finds the library through JWT_AUTH_DYNAMIC_MODULE.

.PHONY: build-native test-native

NATIVE_MODULE := $(ROOT)/target/release/libjwt_auth_dynamic_module.so
export JWT_AUTH_DYNAMIC_MODULE := $(NATIVE_MODULE)

NATIVE_SUITES ?= e2e_filter e2e_paths e2e_adversarial e2e_jwks e2e_revocation

TEST_DEPS += build-native test-native

## build-native: the release dynamic module
build-native:
	$(CARGO) build --release -p jwt-auth-dynamic-module
	@ls -l $(NATIVE_MODULE)

## test-native: the chosen end-to-end suites with the native module
test-native: build build-native .venv grpcio
	JWT_AUTH_MODULE=native $(CARGO) test -p jwt-auth-e2e --no-fail-fast \
	  $(foreach s,$(NATIVE_SUITES),--test $(s))
