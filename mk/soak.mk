# Soak under load. See soak/README.md.
#
#   make soak [DURATION=60s]   wrk against Envoy + the filter with valid,
#                              invalid and revoked tokens while the soak's
#                              feed server (revocation-feed) revokes one
#                              more token per second;
#                              prints a report, fails when a revoked token
#                              passed after its propagation window, a valid
#                              token was refused, an invalid one got through,
#                              or Envoy's memory grew (> 20 % + 10 MiB)
#   make soak-ci               the same for SOAK_CI_DURATION (default 20s);
#                              part of `make test` (SKIP_SOAK=1 leaves it out)
#
# wrk comes from Debian and is installed when missing.

.PHONY: soak soak-ci soak-deps soak-feed

SOAK_DURATION    ?= $(or $(DURATION),60s)
SOAK_CI_DURATION ?= 20s
SOAK_FLAGS       ?=

ifneq ($(SKIP_SOAK),1)
TEST_DEPS += soak-ci
endif

## soak-deps: wrk (Debian) when missing
soak-deps:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing wrk (Debian package) for the soak"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 wrk >/dev/null; \
	}

## soak-feed: the feed server the soak revokes through (debug build, as the
## end-to-end suites run it)
soak-feed:
	$(CARGO) build -p revocation-feed

soak: build .venv soak-deps soak-feed
	$(PYTHON) $(ROOT)/soak/soak.py --duration '$(SOAK_DURATION)' $(SOAK_FLAGS)

soak-ci: build .venv soak-deps soak-feed
	$(PYTHON) $(ROOT)/soak/soak.py --duration '$(SOAK_CI_DURATION)' $(SOAK_FLAGS)
