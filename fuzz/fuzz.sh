#!/usr/bin/env bash
# Fuzzing driver for jwt-auth-wasm (used by `make fuzz` / `make fuzz-ci`).
#
#   fuzz/fuzz.sh setup                  nightly toolchain + cargo-fuzz, when missing
#   fuzz/fuzz.sh build                  build every target once
#   fuzz/fuzz.sh run [TARGET...]        run targets (default: all) for FUZZ_SECONDS each
#   fuzz/fuzz.sh repro TARGET FILE      run one input (a crash artifact) and show the panic
#   fuzz/fuzz.sh list                   the targets
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 600)
#   FUZZ_JOBS       targets run at the same time (default 1; each uses one core)
#   FUZZ_SANITIZER  none (default) or address; see fuzz/README.md for why none
#   FUZZ_TOOLCHAIN  default nightly; falls back to stable + RUSTC_BOOTSTRAP=1
#                   when nightly cannot be installed
#
# Each target reads the committed seeds in fuzz/corpus/<target>/ (never
# written to) and grows its own corpus in fuzz/work/corpus/<target>/ (git-
# ignored, kept between runs). Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$FUZZ_DIR"

FUZZ_SECONDS="${FUZZ_SECONDS:-600}"
FUZZ_JOBS="${FUZZ_JOBS:-1}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}"
FUZZ_TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
CARGO_FUZZ_VERSION="0.13.2"

TARGETS=(token_parse_verify token_structured json_object jwks_parse config_parse feed_body shared_codec extract)

log() { echo "fuzz: $*" >&2; }

# Picks the toolchain: nightly through rustup, installed when missing; if that
# fails (no network, broken nightly), stable with RUSTC_BOOTSTRAP=1, which
# unlocks the -Z flags cargo-fuzz passes to rustc.
toolchain() {
  if [[ "$FUZZ_TOOLCHAIN" != nightly* ]]; then
    return
  fi
  if rustup run "$FUZZ_TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    return
  fi
  log "installing the $FUZZ_TOOLCHAIN toolchain (rustup, minimal profile)"
  if rustup toolchain install "$FUZZ_TOOLCHAIN" --profile minimal >&2; then
    return
  fi
  log "cannot install $FUZZ_TOOLCHAIN: using stable with RUSTC_BOOTSTRAP=1"
  FUZZ_TOOLCHAIN=stable
}

setup() {
  toolchain
  if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION (crates.io)"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" >&2
  fi
  if [[ "$FUZZ_TOOLCHAIN" == stable ]]; then
    export RUSTC_BOOTSTRAP=1
  fi
  log "$(rustup run "$FUZZ_TOOLCHAIN" rustc --version), $(cargo fuzz --version)"
}

target_dir() {
  echo "${CARGO_TARGET_DIR:-$FUZZ_DIR/target}/$(rustc -vV | sed -n 's/^host: //p')/release"
}

build() {
  setup
  local start=$SECONDS
  # One build for every target: release (cargo-fuzz's default), debug
  # assertions and overflow checks on, sanitizer per FUZZ_SANITIZER.
  cargo "+$FUZZ_TOOLCHAIN" fuzz build --sanitizer "$FUZZ_SANITIZER" --debug-assertions
  log "built ${#TARGETS[@]} targets in $((SECONDS - start)) s"
}

# Runs one target; prints one summary line; exit status 1 on a crash.
run_one() {
  local t="$1" bin
  bin="$(target_dir)/$t"
  if [[ ! -x "$bin" ]]; then
    echo "$t: FAILED: $bin missing (run 'fuzz/fuzz.sh build' first)"
    return 2
  fi
  mkdir -p "work/corpus/$t" "work/logs" "artifacts/$t"
  local dict=()
  case "$t" in
    token_structured | json_object | jwks_parse | config_parse | feed_body) dict=(-dict=dict/json.dict) ;;
  esac
  local logf="work/logs/$t.log" rc=0
  "$bin" "work/corpus/$t" "corpus/$t" \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" "${dict[@]}" \
    >"$logf" 2>&1 || rc=$?
  local execs rate corp
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logf" | tail -1)"
  corp="$(ls "work/corpus/$t" | wc -l)"
  if [[ $rc -ne 0 ]]; then
    echo "$t: CRASH after ${execs:-?} execs (exit $rc); log $FUZZ_DIR/$logf"
    grep -E "panicked at|SUMMARY|Test unit written to|ERROR: libFuzzer" "$logf" | head -5 | sed 's/^/    /'
    return 1
  fi
  printf '%-20s %4ss  %10s execs  %7s exec/s  corpus %5s  no crash\n' \
    "$t" "$FUZZ_SECONDS" "${execs:-?}" "${rate:-?}" "$corp"
}

run() {
  local targets=("$@")
  [[ ${#targets[@]} -gt 0 ]] || targets=("${TARGETS[@]}")
  [[ "$FUZZ_TOOLCHAIN" == stable ]] && export RUSTC_BOOTSTRAP=1
  log "running ${#targets[@]} targets for ${FUZZ_SECONDS}s each, $FUZZ_JOBS at a time"
  local failed=0 t
  mkdir -p work/logs
  for t in "${targets[@]}"; do
    rm -f "work/logs/$t.summary"
    run_one "$t" >"work/logs/$t.summary" &
    while [[ $(jobs -rp | wc -l) -ge $FUZZ_JOBS ]]; do wait -n || true; done
  done
  wait || true
  for t in "${targets[@]}"; do
    cat "work/logs/$t.summary"
    grep -q "no crash$" "work/logs/$t.summary" || failed=1
  done
  if [[ $failed -ne 0 ]]; then
    log "a target crashed: reproduce with 'fuzz/fuzz.sh repro TARGET fuzz/artifacts/TARGET/crash-...'"
    return 1
  fi
}

repro() {
  local t="${1:?target}" file="${2:?input file}" bin
  bin="$(target_dir)/$t"
  [[ -x "$bin" ]] || build
  file="$(cd "$(dirname "$file")" && pwd)/$(basename "$file")"
  RUST_BACKTRACE=1 "$bin" "$file"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  setup) setup ;;
  build) build ;;
  run) run "$@" ;;
  repro) repro "$@" ;;
  list) printf '%s\n' "${TARGETS[@]}" ;;
  *) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
