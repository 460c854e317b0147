# Release packaging: the optimized module, OCI images for Istio, pushing them.
#
#   make release   dist/plugin.wasm (wasm-opt), dist/plugin.wasm.sha256,
#                  dist/manifest.json, dist/jwt-auth-wasm-<version>.wasm
#   make oci       dist/oci/compat and dist/oci/wasm (OCI image layouts, one per
#                  format Istio pulls) + dist/oci/digests.json; prints the
#                  manifest digests (a WasmPlugin's sha256 for an oci:// url)
#   make push REGISTRY=host[:port]/repo[:tag]
#                  pushes both with skopeo: the compat image as repo:tag, the
#                  wasm artifact as repo:tag-wasm (tag defaults to the crate
#                  version) and checks the registry kept the digests
#   make run-remote  demo: Envoy loading dist/plugin.wasm over HTTP
#                  (examples/envoy-remote.yaml), like `make run`
#
# Tools come from Debian and are installed when missing: binaryen (wasm-opt)
# for `release`, skopeo and docker-registry for `push` and the tests.

.PHONY: release release-deps oci oci-deps push push-layouts release-tools run-remote

DIST               := $(ROOT)/dist
RELEASE_VERSION    := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' $(ROOT)/Cargo.toml | head -n 1)
# The shipped module is built with its own cargo profile (`wasm-release` in
# Cargo.toml: opt-level z, 3 for the HMAC/EdDSA crates) so it never touches
# target/wasm32-wasip1/release, which `make build` and the tests use.
RELEASE_PROFILE    ?= wasm-release
RELEASE_OPT_LEVEL  ?= z
WASM_OPT_FLAGS     ?= -Oz
# The features rustc (>= 1.87) enables for wasm32-wasip1; V8 in Envoy has them all.
WASM_OPT_FEATURES  := --enable-sign-ext --enable-mutable-globals --enable-bulk-memory \
                      --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types
RELEASE_RAW_WASM   := $(ROOT)/target/$(WASM_TARGET)/$(RELEASE_PROFILE)/jwt_auth_wasm.wasm
# `make push`: skopeo TLS verification of the destination: auto (off for
# localhost/127.x/[::1], i.e. a plain-http test registry), true or false; extra
# skopeo flags such as --dest-creds USER:PASS or --dest-authfile FILE.
PUSH_TLS_VERIFY    ?= auto
PUSH_FLAGS         ?=

# `make test` runs e2e/tests/e2e_packaging.rs, which needs dist/ and dist/oci/ from
# this build, skopeo and docker-registry.
TEST_DEPS += release-tools oci

# $(call apt_ensure,command:package ...): installs the Debian packages whose
# command is missing, with one apt-get update.
define apt_ensure
@missing=""; for cp in $(1); do \
  command -v "$${cp%%:*}" >/dev/null 2>&1 || missing="$$missing $${cp#*:}"; \
done; \
if [ -n "$$missing" ]; then \
  echo "installing Debian packages:$$missing"; \
  apt-get update -qq; \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
  || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
fi
endef

## release-deps: wasm-opt (Debian binaryen)
release-deps:
	$(call apt_ensure,wasm-opt:binaryen)
	@wasm-opt --version

## oci-deps: skopeo and the CNCF Distribution registry (Debian docker-registry)
oci-deps:
	$(call apt_ensure,skopeo:skopeo docker-registry:docker-registry)
	@skopeo --version; docker-registry --version

## release-tools: every tool the release tests use, in one apt-get run
release-tools:
	$(call apt_ensure,wasm-opt:binaryen skopeo:skopeo docker-registry:docker-registry)

## release: the optimized module and its checksum and manifest in dist/
release: toolchain release-deps
	$(CARGO) build --target $(WASM_TARGET) -p jwt-auth-wasm --profile $(RELEASE_PROFILE) \
	  --config 'profile.$(RELEASE_PROFILE).inherits="release"' \
	  --config 'profile.$(RELEASE_PROFILE).opt-level="$(RELEASE_OPT_LEVEL)"'
	@mkdir -p $(DIST)
	@$(PYTHON) $(ROOT)/tools/wasm_exports.py $(RELEASE_RAW_WASM)
	@# wasm-opt takes a while: skip it when neither the input nor the flags changed.
	@stamp="$$(sha256sum < $(RELEASE_RAW_WASM) | cut -d' ' -f1) $(WASM_OPT_FLAGS) $(WASM_OPT_FEATURES)"; \
	 if [ -f $(DIST)/plugin.wasm ] && [ "$$(cat $(DIST)/.plugin.wasm.input 2>/dev/null)" = "$$stamp" ]; then \
	   echo "dist/plugin.wasm is up to date"; \
	 else \
	   echo "wasm-opt $(WASM_OPT_FLAGS) $(RELEASE_RAW_WASM)"; \
	   wasm-opt $(WASM_OPT_FEATURES) --strip-debug --strip-producers $(WASM_OPT_FLAGS) \
	     $(RELEASE_RAW_WASM) -o $(DIST)/plugin.wasm.tmp; \
	   mv $(DIST)/plugin.wasm.tmp $(DIST)/plugin.wasm; \
	   echo "$$stamp" > $(DIST)/.plugin.wasm.input; \
	 fi
	@cd $(DIST) && sha256sum plugin.wasm > plugin.wasm.sha256 \
	 && cp plugin.wasm jwt-auth-wasm-$(RELEASE_VERSION).wasm \
	 && sha256sum jwt-auth-wasm-$(RELEASE_VERSION).wasm > jwt-auth-wasm-$(RELEASE_VERSION).wasm.sha256
	@$(PYTHON) $(ROOT)/tools/third_party.py --package jwt-auth-wasm --platform $(WASM_TARGET) \
	  --out $(DIST)/plugin.wasm.third-party.txt
	@$(PYTHON) $(ROOT)/tools/release_manifest.py --wasm $(DIST)/plugin.wasm --raw $(RELEASE_RAW_WASM) \
	  --version $(RELEASE_VERSION) --out $(DIST)/manifest.json --profile $(RELEASE_PROFILE) \
	  --wasm-opt-flags='$(WASM_OPT_FLAGS)' --root $(ROOT)
	@echo "dist/plugin.wasm: $$(stat -c %s $(DIST)/plugin.wasm) bytes (before wasm-opt: $$(stat -c %s $(RELEASE_RAW_WASM)))," \
	  "sha256 $$(cut -d' ' -f1 $(DIST)/plugin.wasm.sha256), version $(RELEASE_VERSION)"

## oci: both Istio image formats as OCI layouts under dist/oci
oci: release
	$(PYTHON) $(ROOT)/tools/oci_layout.py build --wasm $(DIST)/plugin.wasm \
	  --version $(RELEASE_VERSION) --out $(DIST)/oci

## push: build and push both images (REGISTRY=host[:port]/repo[:tag])
push: oci push-layouts

## push-layouts: push the existing dist/oci layouts without rebuilding them
push-layouts: oci-deps
	@test -n "$(REGISTRY)" || { echo "usage: make push REGISTRY=host[:port]/repo[:tag]"; exit 2; }
	@test -f $(DIST)/oci/digests.json || { echo "no dist/oci: run make oci"; exit 1; }
	@ref='$(REGISTRY)'; ref="$${ref#docker://}"; ref="$${ref#oci://}"; \
	 host="$${ref%%/*}"; last="$${ref##*/}"; \
	 if [ "$$host" = "$$ref" ]; then echo "REGISTRY must be host[:port]/repo[:tag], got $$ref"; exit 2; fi; \
	 if [[ "$$last" == *:* ]]; then repo="$${ref%:*}"; tag="$${last##*:}"; else repo="$$ref"; tag='$(RELEASE_VERSION)'; fi; \
	 tls='$(PUSH_TLS_VERIFY)'; \
	 if [ "$$tls" = auto ]; then \
	   case "$$host" in localhost|localhost:*|127.*|\[::1\]|\[::1\]:*) tls=false;; *) tls=true;; esac; \
	 fi; \
	 for variant in compat wasm; do \
	   if [ $$variant = compat ]; then dest="$$repo:$$tag"; else dest="$$repo:$$tag-wasm"; fi; \
	   want="$$($(PYTHON) $(ROOT)/tools/oci_layout.py digest $(DIST)/oci/$$variant)"; \
	   digestfile="$$(mktemp)"; \
	   skopeo copy --quiet --preserve-digests --dest-tls-verify=$$tls --digestfile "$$digestfile" $(PUSH_FLAGS) \
	     "oci:$(DIST)/oci/$$variant" "docker://$$dest"; \
	   got="$$(cat "$$digestfile")"; rm -f "$$digestfile"; \
	   if [ "$$got" != "$$want" ]; then echo "$$dest: registry has manifest $$got, expected $$want"; exit 1; fi; \
	   printf '%-7s pushed %s@%s\n' "$$variant" "$$dest" "$$got"; \
	   printf '        WasmPlugin: url: oci://%s  sha256: %s\n' "$$dest" "$${got#sha256:}"; \
	 done

## run-remote: echo upstream :8081, a file server for dist/ on :8000, Envoy
## loading the module from it (examples/envoy-remote.yaml) on :8080
run-remote: release .venv
	$(CARGO) build --quiet -p testkit --bins
	@cd $(ROOT); mkdir -p .run; \
	 sha="$$(cut -d' ' -f1 dist/plugin.wasm.sha256)"; \
	 sed "s/0000000000000000000000000000000000000000000000000000000000000000/$$sha/" \
	   examples/envoy-remote.yaml > .run/envoy-remote.yaml; \
	 token="$$($(ROOT)/target/debug/demo-token --sub '$(SUB)' --provider '$(PROVIDER)' --exp-in '$(EXP)')"; \
	 $(ROOT)/target/debug/echo-upstream --port 8081 & echo_pid=$$!; \
	 $(PYTHON) -m http.server 8000 --bind 127.0.0.1 --directory dist >/dev/null 2>&1 & http_pid=$$!; \
	 trap 'kill $$echo_pid $$http_pid $${envoy_pid:-} 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM; \
	 $(ENVOY_BIN) -c .run/envoy-remote.yaml --disable-hot-restart -l info --log-path .run/envoy-remote.log & envoy_pid=$$!; \
	 for i in $$(seq 1 100); do \
	   if curl -fsS http://127.0.0.1:9901/ready 2>/dev/null | grep -q LIVE; then break; fi; \
	   if ! kill -0 $$envoy_pid 2>/dev/null; then echo "Envoy exited; log:"; tail -30 .run/envoy-remote.log; exit 1; fi; \
	   sleep 0.2; \
	 done; \
	 echo; echo "Envoy loaded dist/plugin.wasm (sha256 $$sha) from http://127.0.0.1:8000 (log: .run/envoy-remote.log). Try:"; echo; \
	 echo "  curl -H \"Authorization: Bearer $$token\" http://localhost:8080/hello"; \
	 echo "  curl -i http://localhost:8080/hello          # 401"; \
	 echo; echo "Ctrl-C stops all three."; \
	 wait $$envoy_pid
