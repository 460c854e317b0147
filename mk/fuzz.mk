# Fuzzing: cargo-fuzz targets in fuzz/ (a crate of its own, outside
# the root workspace). Details, results and how to reproduce: fuzz/README.md.
#
#   make fuzz          installs the nightly toolchain and cargo-fuzz when missing,
#                      builds every target once, runs each for FUZZ_SECONDS
#                      (default 600), FUZZ_JOBS at a time (default 1)
#   make fuzz-ci       the same, 60 s per target, two at a time; part of `make test`
#                      (SKIP_FUZZ=1 leaves it out of a local `make test`)
#   make fuzz-build    build only
#   make fuzz-repro TARGET=extract INPUT=fuzz/artifacts/extract/crash-...
#   make fuzz-seeds    regenerate the committed seed corpora (fuzz/corpus/)
#   make fuzz-fmt      rustfmt check of the fuzz crate (part of `make lint`)

.PHONY: fuzz fuzz-ci fuzz-build fuzz-repro fuzz-seeds fuzz-fmt

FUZZ_SH         := $(ROOT)/fuzz/fuzz.sh
FUZZ_SECONDS    ?= 600
FUZZ_JOBS       ?= 1
FUZZ_CI_SECONDS ?= 60
FUZZ_CI_JOBS    ?= 2
FUZZ_SANITIZER  ?= none

ifneq ($(SKIP_FUZZ),1)
TEST_DEPS += fuzz-ci
endif
LINT_DEPS += fuzz-fmt

fuzz-build:
	FUZZ_SANITIZER=$(FUZZ_SANITIZER) $(FUZZ_SH) build

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) $(FUZZ_SH) run

fuzz-ci: fuzz-build
	FUZZ_SECONDS=$(FUZZ_CI_SECONDS) FUZZ_JOBS=$(FUZZ_CI_JOBS) $(FUZZ_SH) run

fuzz-repro:
	@test -n "$(TARGET)" -a -n "$(INPUT)" || { echo "usage: make fuzz-repro TARGET=name INPUT=file"; exit 2; }
	FUZZ_SANITIZER=$(FUZZ_SANITIZER) $(FUZZ_SH) repro '$(TARGET)' '$(INPUT)'

fuzz-seeds:
	cd $(ROOT)/fuzz && $(CARGO) run --release --features seeds --bin gen_seeds

fuzz-fmt:
	rustfmt --edition 2021 --check $(ROOT)/fuzz/src/lib.rs $(ROOT)/fuzz/src/bin/gen_seeds.rs $(ROOT)/fuzz/fuzz_targets/*.rs
