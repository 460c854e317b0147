#!/usr/bin/env python3
"""Instructions per request: each variant's Envoy under callgrind.

`make bench` measures CPU time, which moves with whatever else the machine
runs (the two cores here are shared). Callgrind counts the instructions
Envoy executes instead: the same count for the same binary and requests,
whatever the machine is doing, so small differences between variants
(a hash, an allocation, a host call) show up and stay put from run to run.
It counts user-space instructions only (not the kernel's socket work, the
same for every variant) and not cycles (cache misses, branch mispredictions).

    python3 bench/instructions.py [--requests 1000] [--algs HS256,RS256,ES256,EdDSA]
        [--variants passthrough,jwt_authn,jwt_authn_cache,native,native_cache]
        (native_base, native_base_cache: the build BENCH_BASE_NATIVE names)

For each variant and algorithm: Envoy (`--concurrency 1`) under
`valgrind --tool=callgrind`, 200 warm-up requests on one keep-alive
connection, the counters zeroed (`callgrind_control -z`), `--requests`
requests, the counters dumped. The table goes to bench/results/instructions.md.
Environment as for bench/run.py (ENVOY_BIN, JWT_AUTH_WASM,
JWT_AUTH_DYNAMIC_MODULE, BENCH_TOOL).
"""

import argparse
import glob
import http.client
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (the same variants, configurations and tokens)

WARMUP = 200
OUT_DIR = os.path.join(bench.RUN_DIR, "callgrind")
VARIANTS = ["passthrough", "jwt_authn", "jwt_authn_cache", "native", "native_cache"]


def envoy_binary():
    """The Envoy executable itself: the Python package's `envoy` command is
    a script that execs it, and valgrind must start the binary."""
    with open(bench.ENVOY, "rb") as f:
        if f.read(2) != b"#!":
            return bench.ENVOY
    venv = os.path.dirname(os.path.dirname(os.path.realpath(bench.ENVOY)))
    found = glob.glob(os.path.join(venv, "lib", "python*", "site-packages", "envoy", "_bin", "envoy"))
    if not found:
        sys.exit("no Envoy binary under %s (make .venv)" % venv)
    return found[0]


def under_callgrind(tag, binary):
    """Has bench.Envoy start `binary` under callgrind, its output named by `tag`."""
    start = bench.spawn

    def spawn(argv, log_path, stdout=None):
        if bench.ENVOY in argv:
            at = argv.index(bench.ENVOY)
            out = os.path.join(OUT_DIR, tag + ".%p.out")
            argv = argv[:at] + ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                                binary] + argv[at + 1:]
        return start(argv, log_path, stdout)

    bench.spawn = spawn
    return start


def send(port, token, count):
    """`count` GETs on one keep-alive connection; all must get 200."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(count):
            c.request("GET", "/", headers={"authorization": "Bearer " + token})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError("status %d" % r.status)
    finally:
        c.close()


def total_ir(path):
    """The `summary:` (or `totals:`) line of a callgrind dump."""
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


def measure(variant, alg, info, requests, binary):
    tag = "%s-%s" % (variant, alg)
    for old in glob.glob(os.path.join(OUT_DIR, tag + ".*")):
        os.remove(old)
    start = under_callgrind(tag, binary)
    try:
        envoy = bench.Envoy("cg-" + tag, bench.auth_filters(variant, info["jwk"]))
    finally:
        bench.spawn = start
    try:
        if not envoy.wait_ready(timeout=300):
            raise RuntimeError("%s: Envoy did not start:\n%s" % (tag, envoy.log_tail()))
        problem = bench.sanity(envoy, info["token"], needs_auth=variant != "passthrough")
        if problem:
            raise RuntimeError("%s: %s" % (tag, problem))
        send(envoy.port, info["token"], WARMUP)
        pid = str(envoy.proc.pid)
        subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
        send(envoy.port, info["token"], requests)
        subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
        deadline = time.time() + 30
        dumps = []
        while time.time() < deadline and not dumps:
            dumps = [p for p in glob.glob(os.path.join(OUT_DIR, tag + ".*.out.*"))]
            time.sleep(0.2)
        if not dumps:
            raise RuntimeError("%s: callgrind wrote no dump" % tag)
        time.sleep(0.5)
        return total_ir(sorted(dumps)[0]) / requests
    finally:
        envoy.stop()


def valgrind_version():
    return subprocess.run(["valgrind", "--version"], capture_output=True,
                          text=True).stdout.strip().replace("valgrind-", "")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--algs", default=",".join(bench.ALL_ALGS))
    p.add_argument("--variants", default=",".join(VARIANTS))
    args = p.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            sys.exit("%s not found (Debian package valgrind)" % tool)
    algs, variants = args.algs.split(","), args.variants.split(",")
    os.makedirs(OUT_DIR, exist_ok=True)
    machine = bench.machine_info()
    if any(v.startswith("native") for v in variants):
        if not os.path.exists(bench.NATIVE_MODULE):
            sys.exit("native module not found at %s (make build-native)" % bench.NATIVE_MODULE)
        copy = os.path.join(bench.RUN_DIR, os.path.basename(bench.NATIVE_MODULE))
        shutil.copyfile(bench.NATIVE_MODULE, copy)
        os.environ["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = bench.RUN_DIR
    if any(v.startswith("native_base") for v in variants):
        if not bench.BASE_NATIVE:
            sys.exit("native_base: set BENCH_BASE_NATIVE to another build of the module")
        shutil.copyfile(bench.BASE_NATIVE, os.path.join(bench.RUN_DIR, bench.BASE_NATIVE_NAME))
    binary = envoy_binary()
    tokens = bench.mint(algs)["algs"]
    rows = {}
    for alg in algs:
        for variant in variants:
            if variant == "passthrough" and alg != algs[0]:
                continue
            ir = measure(variant, alg, tokens[alg], args.requests, binary)
            rows[(variant, alg)] = ir
            bench.log("%-16s %-6s %9.0f instructions/request" % (variant, alg, ir))
    base = rows.get(("passthrough", algs[0]))
    lines = [
        "# Instructions per request (callgrind)",
        "",
        "- date: %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "- machine: %s cores (`nproc`), %s, Linux %s" % (
            machine["nproc"], machine["cpu"], machine["kernel"]),
        "- Envoy %s, valgrind %s; filter: commit %s" % (
            machine["envoy"], valgrind_version(), machine["commit"]),
        "- setup: one Envoy worker (`--concurrency 1`) under `valgrind --tool=callgrind`, route "
        "`direct_response` 200; %d warm-up requests, then %d measured GETs on one keep-alive "
        "HTTP/1.1 connection; all of Envoy's threads, user space only" % (WARMUP, args.requests),
        "- command: `python3 bench/instructions.py --requests %d --algs %s --variants %s`"
        % (args.requests, args.algs, args.variants),
        "",
        "| variant | alg | instructions/request | above passthrough | jwt_authn (same cache mode) / this |",
        "|---|---|---:|---:|---:|",
    ]
    for (variant, alg), ir in rows.items():
        above = "" if base is None or variant == "passthrough" else "%+.0f" % (ir - base)
        peer = None
        if variant.startswith(("native", "wasm")):
            mode = "jwt_authn_cache" if variant.endswith("_cache") else "jwt_authn"
            peer = rows.get((mode, alg))
        ratio = "" if not peer else "%.2f" % (peer / ir)
        label = bench.VARIANT_LABEL.get(variant, variant)
        lines.append("| %s | %s | %.0f | %s | %s |" % (
            label, "-" if variant == "passthrough" else alg, ir, above, ratio))
    path = os.path.join(bench.RESULTS, "instructions.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    bench.log("wrote " + path)


if __name__ == "__main__":
    main()
