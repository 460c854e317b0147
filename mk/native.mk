# The native build: jwt-auth as an Envoy dynamic module (dynamic-module/),
# a shared library for envoy.filters.http.dynamic_modules of Envoy 1.40.
#
#   make build-native   target/release/libjwt_auth_dynamic_module.so
#   make test-native    the end-to-end suites of decisions, stripping, rules,
#                       remote keys, revocation, the feed (its server and
#                       replicas that fail over), Envoy's other filters and
#                       gRPC, configuration reloads and hot restarts, and the
#                       signature edge cases of the accelerated RSA/ECDSA
#                       path, again, against the native module (part of
#                       `make test`)
#
# The test kit picks the build with JWT_AUTH_MODULE=wasm|native (default
# wasm) and finds the library through JWT_AUTH_DYNAMIC_MODULE.

.PHONY: build-native test-native

NATIVE_MODULE := $(ROOT)/target/release/libjwt_auth_dynamic_module.so
export JWT_AUTH_DYNAMIC_MODULE := $(NATIVE_MODULE)

NATIVE_SUITES ?= e2e_filter e2e_paths e2e_adversarial e2e_jwks e2e_revocation \
                 e2e_feed_server e2e_feed_replicas e2e_ecosystem e2e_reload \
                 e2e_host_crypto

TEST_DEPS += build-native test-native

## build-native: the release dynamic module
build-native:
	$(CARGO) build --release -p jwt-auth-dynamic-module
	@ls -l $(NATIVE_MODULE)

## test-native: the chosen end-to-end suites with the native module
test-native: build build-native .venv grpcio
	JWT_AUTH_MODULE=native $(CARGO) test -p jwt-auth-e2e --no-fail-fast \
	  $(foreach s,$(NATIVE_SUITES),--test $(s))

## release-native: the module beside the wasm in dist/ (part of `make
## release`): dist/libjwt_auth_dynamic_module.so (the name Envoy loads by),
## a versioned copy naming the Envoy version and platform it is built for,
## and a .sha256 of each
NATIVE_RELEASE_NAME = jwt-auth-dynamic-module-$(RELEASE_VERSION)-envoy-$(ENVOY_VERSION)-$(shell uname -m)-linux.so
.PHONY: release-native
release: release-native
release-native:
	$(CARGO) build --release -p jwt-auth-dynamic-module
	@mkdir -p $(DIST)
	@cp $(NATIVE_MODULE) $(DIST)/libjwt_auth_dynamic_module.so
	@cd $(DIST) && sha256sum libjwt_auth_dynamic_module.so > libjwt_auth_dynamic_module.so.sha256 \
	 && cp libjwt_auth_dynamic_module.so $(NATIVE_RELEASE_NAME) \
	 && sha256sum $(NATIVE_RELEASE_NAME) > $(NATIVE_RELEASE_NAME).sha256
	@$(PYTHON) $(ROOT)/tools/third_party.py --package jwt-auth-dynamic-module \
	  --platform $(shell rustc -vV | sed -n 's/^host: //p') \
	  --out $(DIST)/libjwt_auth_dynamic_module.so.third-party.txt
	@echo "dist/libjwt_auth_dynamic_module.so: $$(stat -c %s $(DIST)/libjwt_auth_dynamic_module.so) bytes," \
	  "sha256 $$(cut -d' ' -f1 $(DIST)/libjwt_auth_dynamic_module.so.sha256), for Envoy $(ENVOY_VERSION)"
