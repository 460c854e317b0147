#!/usr/bin/env python3
"""What each proxy-wasm host call costs inside Envoy (`make bench-host-calls`).

bench/host-probe makes N host calls of one kind per request, in
on_http_request_headers, and nothing else. For each kind (a "case": the call
and the request's header map) one Envoy runs one listener per N, identical
but for N (each with its own VM); wrk loads them in turn, and Envoy's CPU
time per request (user + system from /proc/<pid>/stat over the run, divided
by the requests wrk completed, as `make bench` measures it) is fitted against
N by least squares over N >= 1. The slope is what each further call costs;
the fit at N = 1 minus the N = 0 runs is what the first call of a request
costs, which can be more: it meets Envoy's and the VM's code cold after
the rest of the request's work, and a header write makes Envoy match the
route again once. N = 0 runs first and last in each case.

Same bench setup as bench/run.py, whose helpers this uses: Envoy
`--concurrency 1` on core 0, wrk `-t1` on core 1, a direct_response route.

    python3 bench/host_calls.py [--seconds 4] [--warmup 1] [--rounds 2]
        [--connections 32] [--cases id,id,...] [--checks-only]

Writes bench/results/host-calls.md (table, machine, checks, every run).
Environment: ENVOY_BIN, BENCH_TOOL (as bench/run.py), HOST_PROBE_WASM
(default target/wasm32-wasip1/release/jwt_auth_host_probe.wasm).
"""

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: processes, Envoy, wrk, machine)

PROBE_WASM = os.environ.get("HOST_PROBE_WASM") or os.path.join(
    run.ROOT, "target", "wasm32-wasip1", "release", "jwt_auth_host_probe.wasm")
RESULTS_MD = os.path.join(run.RESULTS, "host-calls.md")
FIRST_CALL_MD = os.path.join(run.RESULTS, "host-calls-first-call.md")

# N per listener: cheap calls to 256; calls on the larger maps (and the
# removal of the 64 fill headers) to 64; the crypto to 4; the local reply
# once, measured three times per round against N = 0.
CHEAP = (0, 1, 4, 16, 64, 256)
BOUNDED = (0, 1, 4, 16, 64)
COSTLY = (0, 1, 2, 4)
ONE = (0, 1)

# Every request carries `x-probe` (the header read and replaced by name) and
# `fill` more headers `x-fill-<i>`; Envoy adds its own (:authority, :path,
# :method, :scheme, x-forwarded-proto, x-request-id), so the "small" map
# holds 7 headers.
FILL_VALUE = "0123456789abcdef"
# Room for 200 fill headers and 64 added ones (Envoy's default limit is 100).
HCM_OPTIONS = {"common_http_protocol_options": {"max_headers_count": 512}}


def case(cid, label, call, fill=0, ns=None, status=200, repeat=1):
    """One measured kind: `call` is the probe's `call` configuration;
    `status` is the answer expected when N > 0; `repeat` runs the N > 0
    listeners that many times per round, alternating with N = 0."""
    ns = ns or (BOUNDED if fill else CHEAP)
    return {"id": cid, "label": label, "call": call, "fill": fill, "ns": ns, "status": status,
            "repeat": repeat}


def verify_case(cid, alg, form, verify):
    argument = verify["algs"][alg][form]
    label = "`verify_signature` %s, %s key (%d bytes)" % (
        alg, "DER SPKI" if form == "der" else "PEM", verify["algs"][alg]["key_%s_bytes" % form])
    return case(cid, label, {"kind": "foreign", "function": "verify_signature",
                             "argument_hex": argument, "expect_hex": verify["expect_hex"]},
                ns=COSTLY)


def all_cases(verify):
    read = "header map read, raw `proxy_get_header_map_pairs` (as src/host/runtime.rs)"
    sdk = "header map read, SDK `get_http_request_headers`"
    get = "one header by name (`proxy_get_header_map_value`), present"
    replace = "header replace, existing (`proxy_replace_header_map_value`)"
    remove = "header remove (`proxy_remove_header_map_value`)"
    return [
        case("map_read_raw", read, {"kind": "map_read_raw"}),
        case("map_read_raw_64", read, {"kind": "map_read_raw"}, fill=64),
        case("map_read_raw_200", read, {"kind": "map_read_raw"}, fill=200),
        case("map_read_sdk", sdk, {"kind": "map_read_sdk"}),
        case("map_read_sdk_200", sdk, {"kind": "map_read_sdk"}, fill=200),
        case("header_get", get, {"kind": "header_get", "name": "x-probe"}),
        case("header_get_absent", "one header by name, absent",
             {"kind": "header_get", "name": "x-absent"}),
        case("header_get_200", get, {"kind": "header_get", "name": "x-probe"}, fill=200),
        case("header_add", "header add, a new name each call (`proxy_add_header_map_value`)",
             {"kind": "header_add", "prefix": "x-added"}),
        case("header_replace", replace, {"kind": "header_replace", "name": "x-probe"}),
        case("header_replace_64", replace, {"kind": "header_replace", "name": "x-probe"},
             fill=64),
        case("header_replace_200", replace, {"kind": "header_replace", "name": "x-probe"},
             fill=200),
        case("header_remove_present_64", remove + ", present",
             {"kind": "header_remove", "prefix": "x-fill"}, fill=64),
        case("header_remove_absent", remove + ", absent",
             {"kind": "header_remove", "prefix": "x-gone"}),
        case("header_remove_absent_64", remove + ", absent",
             {"kind": "header_remove", "prefix": "x-gone"}, fill=64),
        case("time", "current time (`proxy_get_current_time_nanoseconds`)", {"kind": "time"}),
        case("counter", "counter increment (`proxy_increment_metric`, defined once)",
             {"kind": "counter"}),
        case("property_path", "property `request.path` (`proxy_get_property`)",
             {"kind": "property", "path": ["request", "path"]}),
        case("property_plugin_name", "property `plugin_name`",
             {"kind": "property", "path": ["plugin_name"]}),
        case("clear_route_cache", "foreign function `clear_route_cache`",
             {"kind": "foreign", "function": "clear_route_cache"}),
        verify_case("verify_rs256_der", "RS256", "der", verify),
        verify_case("verify_rs256_pem", "RS256", "pem", verify),
        verify_case("verify_es256_der", "ES256", "der", verify),
        verify_case("verify_es256_pem", "ES256", "pem", verify),
        case("set_effective_context", "`proxy_set_effective_context` (own context)",
             {"kind": "set_effective_context"}),
        case("local_reply", "local reply 403 (`proxy_send_local_response`) instead of "
             "continuing to the direct_response route", {"kind": "local_reply"}, ns=ONE,
             status=403, repeat=3),
    ]


def request_headers(fill):
    return [("x-probe", "present")] + [("x-fill-%d" % i, FILL_VALUE) for i in range(fill)]


def map_label(fill):
    return "7 headers" if not fill else "%d headers" % (7 + fill)


def probe_listener(name, call, n, routes=None, self_test=None):
    plugin = {"n": n, "call": call}
    if self_test:
        plugin["self_test"] = self_test
    return (name, [run.wasm_filter(PROBE_WASM, plugin, name=name)], HCM_OPTIONS, routes)


# --------------------------------------------------------------------------
# measuring


def run_order(c, rnd):
    """N = 0 first and last, N > 0 between (ascending in even rounds,
    descending in odd ones), `repeat` times."""
    inner = list(c["ns"][1:]) if rnd % 2 == 0 else list(c["ns"][:0:-1])
    return ([0] + inner) * c["repeat"] + [0]


def run_case(c, rnd, args):
    """One Envoy with a listener per N, loaded in run_order. Returns the
    runs, or a note."""
    ns = list(c["ns"])
    envoy = run.Envoy("host-calls-%s" % c["id"], listeners=[
        probe_listener("probe_%d" % n, c["call"], n) for n in ns])
    headers = request_headers(c["fill"])
    lines = ["%s: %s" % h for h in headers]
    try:
        if not envoy.wait_ready():
            run.log(envoy.log_tail())
            return [], "Envoy did not start (%s)" % envoy.proc.log_path
        ports = dict(zip(ns, envoy.ports))
        for n in ns:
            want = c["status"] if n else 200
            status, body = run.get(ports[n], "/", dict(headers))
            if status != want:
                run.log(envoy.log_tail(10))
                return [], "N=%d answered %d, want %d (%s)" % (n, status, want, body[:80])
        runs = []
        for n in run_order(c, rnd):
            run.wrk(ports[n], None, args.warmup, args.connections, lines)
            res = run.wrk_cpu(envoy, None, args.seconds, args.connections, ports[n], lines)
            if envoy.proc.poll() is not None:
                return runs, "Envoy exited under load"
            allowed = res["non2xx"] if (n and c["status"] != 200) else 0
            if res["errors"] or res["non2xx"] != allowed or res["cpu_us"] is None:
                return runs, "N=%d: %d non-2xx, %d socket errors" % (
                    n, res["non2xx"], res["errors"])
            runs.append({"n": n, "cpu_us": res["cpu_us"], "rps": res["rps"], "round": rnd})
        return runs, None
    finally:
        envoy.stop()


def fit(points):
    """Least squares y = a + b x over (x, y) points: (a, b, R², standard
    error of b); R² and the error are None when they are not defined."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if not sxx:
        return my, None, None, None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    r2 = 1 - ss_res / ss_tot if ss_tot else None
    se = math.sqrt(ss_res / (len(xs) - 2) / sxx) if len(xs) > 2 else None
    return a, b, r2, se


def estimates(runs):
    """(slope over N >= 1, first call = the fit at N = 1 minus the mean of
    the N = 0 runs, R²) of some runs; with a single N > 0 there is no slope
    and the first call is that N's mean minus N = 0's, per call."""
    zero = [r["cpu_us"] for r in runs if r["n"] == 0]
    calls = [(r["n"], r["cpu_us"]) for r in runs if r["n"] > 0]
    if not zero or not calls:
        return None, None, None
    y0 = statistics.mean(zero)
    if len({n for n, _ in calls}) == 1:
        n = calls[0][0]
        return None, (statistics.mean(y for _, y in calls) - y0) / n, None
    a, b, r2, _ = fit(calls)
    return b, a + b - y0, r2


def summarize(runs):
    """Pooled over rounds and per round: the slope, the first call, R² of
    the pooled fit and the mean N = 0 cost."""
    slope, first, r2 = estimates(runs)
    rounds = [estimates([r for r in runs if r["round"] == rnd])
              for rnd in sorted({r["round"] for r in runs})]
    zero = [r["cpu_us"] for r in runs if r["n"] == 0]
    return {"slope": slope, "first": first, "r2": r2,
            "y0": statistics.mean(zero) if zero else None,
            "slopes": [e[0] for e in rounds if e[0] is not None],
            "firsts": [e[1] for e in rounds if e[1] is not None]}


# --------------------------------------------------------------------------
# checks: what a header write does to the route, what verify_signature takes


def reroute_config():
    """The bench route plus one in front that matches on the header the
    probe adds or removes."""
    routes = run.route_config()
    routes["virtual_hosts"][0]["routes"].insert(0, {
        "match": {"prefix": "/", "headers": [{"name": "x-probe-route-0",
                                               "present_match": True}]},
        "direct_response": {"status": 200, "body": {"inline_string": "rerouted\n"}}})
    return routes


ROUTE_CHECKS = [
    # (listener, probe call, N, request carries x-probe-route-0, what it shows)
    ("route_none", {"kind": "none"}, 0, True,
     "no call, request with `x-probe-route-0`: the header route matches"),
    ("route_add", {"kind": "header_add", "prefix": "x-probe-route"}, 1, False,
     "the probe adds `x-probe-route-0`"),
    ("route_remove", {"kind": "header_remove", "prefix": "x-probe-route"}, 1, True,
     "the probe removes `x-probe-route-0`"),
    ("route_clear", {"kind": "foreign", "function": "clear_route_cache"}, 1, False,
     "`clear_route_cache` alone, no header written"),
]


def route_check():
    """Whether Envoy re-matches the route after the probe writes a header the
    route config matches on: the body names the route that answered."""
    routes = reroute_config()
    envoy = run.Envoy("host-calls-route-check", listeners=[
        probe_listener(name, call, n, routes) for name, call, n, _, _ in ROUTE_CHECKS])
    lines = []
    try:
        if not envoy.wait_ready():
            return ["- route check: Envoy did not start (%s)" % envoy.proc.log_path]
        for (name, _, _, with_header, what), port in zip(ROUTE_CHECKS, envoy.ports):
            headers = {"x-probe-route-0": "1"} if with_header else {}
            status, body = run.get(port, "/", headers)
            lines.append("- %s: %d `%s`" % (what, status, body.decode().strip()))
    finally:
        envoy.stop()
    return lines


# verify-args' key forms, in the order the report lists them.
KEY_FORMS = ("der", "pem", "pem_in_key_field", "pkcs1_der", "pkcs1_pem")


def self_tests(verify):
    """verify_signature with each key form, and clear_route_cache, called
    once from the root context at configuration; the outcomes from Envoy's
    log."""
    tests = [{"label": "%s %s" % (alg, form), "function": "verify_signature",
              "argument_hex": verify["algs"][alg][form]}
             for alg in sorted(verify["algs"]) for form in KEY_FORMS if form in verify["algs"][alg]]
    tests.append({"label": "clear_route_cache (root context)",
                  "function": "clear_route_cache"})
    envoy = run.Envoy("host-calls-self-test", listeners=[
        probe_listener("self_test", {"kind": "none"}, 0, self_test=tests)])
    try:
        ready = envoy.wait_ready()
        log_text = run.tail(envoy.proc.log_path, 200)
    finally:
        envoy.stop()
    if not ready:
        return ["- self-test: Envoy did not start (%s)" % envoy.proc.log_path]
    out = []
    for t in tests:
        m = re.search(r"host-probe self-test %s: (.*)" % re.escape(t["label"]), log_text)
        out.append("- %s: %s" % (t["label"], explain(m.group(1).strip()) if m else
                                 "no outcome in the log"))
    return out


def explain(outcome):
    """A self-test outcome in words: `ok <hex>` is a reply message (for
    verify_signature a VerifySignatureResult), anything else the status the
    host returned instead."""
    if not outcome.startswith("ok"):
        return "the call failed: %s" % outcome
    reply = bytes.fromhex(outcome[2:].strip())
    if reply == b"":
        return "ok, empty reply"
    fields = protobuf_fields(reply)
    if fields.get(1) == 1:
        return "verified (`result: true`)"
    return "not verified: %s" % fields.get(2, b"").decode("utf-8", "replace")


def protobuf_fields(data):
    """Field number -> value of a flat protobuf message (varints and
    length-delimited fields only, as VerifySignatureResult has)."""
    fields, i = {}, 0

    def varint():
        nonlocal i
        n = shift = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return n

    while i < len(data):
        key = varint()
        if key & 7 == 0:
            fields[key >> 3] = varint()
        elif key & 7 == 2:
            length = varint()
            fields[key >> 3] = data[i:i + length]
            i += length
        else:
            break
    return fields


# --------------------------------------------------------------------------
# report


def fmt(v, spec=".2f"):
    return run.fmt_num(v, spec)


def table(cases, results):
    base = results.get("header_get", {}).get("slope")
    out = ["| host call | request headers | µs per call (slope) | per round | R² "
           "| first call in a request, µs | per round | µs/request at N=0 "
           "| slope × a read by name |",
           "|---|---:|---:|---|---:|---:|---|---:|---:|"]
    for c in cases:
        s = results.get(c["id"], {})
        if s.get("note"):
            out.append("| %s | %s | FAILED: %s | | | | | | |" % (
                c["label"], map_label(c["fill"]), s["note"]))
            continue
        slope = s.get("slope")
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            c["label"], map_label(c["fill"]), fmt(slope),
            ", ".join(fmt(x) for x in s.get("slopes", [])), fmt(s.get("r2"), ".3f"),
            fmt(s.get("first"), ".1f"), ", ".join(fmt(x, ".1f") for x in s.get("firsts", [])),
            fmt(s.get("y0"), ".1f"),
            fmt(slope / base if slope is not None and base else None, ".1f")))
    return "\n".join(out)


def runs_table(cases, results):
    out = ["| case | round | N | Envoy CPU µs/request | req/s |", "|---|---:|---:|---:|---:|"]
    for c in cases:
        for r in sorted(results.get(c["id"], {}).get("runs", []),
                        key=lambda r: (r["round"], r["n"])):
            out.append("| %s | %d | %d | %.2f | %.0f |" % (
                c["id"], r["round"] + 1, r["n"], r["cpu_us"], r["rps"]))
    return "\n".join(out)


def document(machine, args, cases, results, route_lines, test_lines):
    first_call = ("**First-call run** (`--first-call %d`): every kind here ran only N = 0 and "
                  "N = 1, %d times a round alternating (N = 0 first and last), so the first "
                  "call's figure rests on %d + %d runs a round instead of a fit; there is no "
                  "slope. The method below is otherwise the same." % (
                      args.first_call, args.first_call, args.first_call + 1, args.first_call)
                  if args.first_call else "")
    return "\n".join([
        "# jwt-auth-wasm: proxy-wasm host-call costs in Envoy", "",
        "\n".join(run.machine_lines(machine)), "",
        first_call, "",
        "`make bench-host-calls` (bench/host_calls.py). bench/host-probe makes N host calls "
        "of one kind per request in `on_http_request_headers` and nothing else. Per kind, "
        "one Envoy (`--concurrency 1`, core %s) runs a listener per N (its own VM each, "
        "built and trimmed like the filter); wrk (`-t1 -c%d`, core %s, %d s after a %d s "
        "warm-up) loads them in turn against a direct_response route. Envoy CPU per "
        "request = user + system time over the run / requests. **µs per call** is the "
        "least-squares slope over N >= 1 of all %d rounds (per round: each round's own "
        "slope; R²: of the pooled fit): what each further call costs. **First call** = "
        "the fit at N = 1 minus the mean of the N = 0 runs: what the first such call in a "
        "request costs, which is more where it meets the code cold after the rest of the "
        "request's work, and includes, after a header write, the route re-match. N = %s "
        "for cheap calls (to 64 on the larger maps), %s for verify_signature; the local "
        "reply has one point, N = 1 (the 403 instead of the route's direct response), "
        "run three times a round against N = 0. N = 0 runs first and last in each kind; "
        "rounds alternate the order of kinds and of N. Every request carries "
        "`x-probe: present`; \"N headers\" counts the request "
        "map as the filter sees it (Envoy adds :authority, :path, :method, :scheme, "
        "x-forwarded-proto, x-request-id), the larger maps add `x-fill-<i>: %s`." % (
            run.ENVOY_CORE, args.connections, run.LOAD_CORE, args.seconds, args.warmup,
            args.rounds, ", ".join(map(str, CHEAP)), ", ".join(map(str, COSTLY)),
            FILL_VALUE), "",
        table(cases, results), "",
        "## Header writes and the route", "",
        "A route in front of the bench route matches requests carrying `x-probe-route-0` "
        "(answering `rerouted`); the bench route answers `ok`. Envoy computes the route "
        "before the filter runs, so an answer that follows the header the probe wrote "
        "means the write made Envoy clear its route cache and match again.", "",
        "\n".join(route_lines), "",
        "## What `verify_signature` accepts", "",
        "One call each at configuration (root context), a real signature over a minted "
        "token's signing input; `der`: DER SubjectPublicKeyInfo in `public_key` (what the "
        "filter sends), `pem`: the PEM text in `public_key_pem` (field 5), "
        "`pem_in_key_field`: the PEM text in `public_key`; for RSA also the PKCS#1 "
        "`RSAPublicKey` without the SubjectPublicKeyInfo wrapper, `pkcs1_der` in "
        "`public_key` and `pkcs1_pem` (`RSA PUBLIC KEY`) in `public_key_pem`.", "",
        "\n".join(test_lines), "",
        "## Every run", "",
        runs_table(cases, results), "",
    ])


# --------------------------------------------------------------------------


def probe_module():
    """Copies the probe so a concurrent rebuild cannot change it mid-run;
    returns its path and "size, sha256" for the report."""
    dst = os.path.join(run.RUN_DIR, "jwt_auth_host_probe.wasm")
    shutil.copyfile(PROBE_WASM, dst)
    with open(dst, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    return dst, "host probe %d bytes, sha256 %s" % (os.path.getsize(dst), digest)


def main():
    global PROBE_WASM
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--cases", default="", help="comma-separated case ids (default: all)")
    p.add_argument("--first-call", type=int, default=0, metavar="K",
                   help="only N = 0 and N = 1, K times a round alternating: the first "
                        "call in a request, more precisely (writes %s)" %
                        os.path.relpath(FIRST_CALL_MD, run.ROOT))
    p.add_argument("--checks-only", action="store_true",
                   help="only what verify_signature accepts and the route check; "
                        "prints them, writes nothing")
    args = p.parse_args()
    for what, path in (("Envoy", run.ENVOY), ("probe", PROBE_WASM), ("jwt-auth-bench", run.TOOL)):
        if not os.path.exists(path):
            sys.exit("%s not found at %s (run through make bench-host-calls)" % (what, path))
    for cmd in ("taskset", "wrk"):
        if not shutil.which(cmd):
            sys.exit("%s not found (make bench-host-calls installs it)" % cmd)
    os.makedirs(run.RUN_DIR, exist_ok=True)
    code, out, err = run.tool("verify-args", "RS256", "ES256")
    if code != 0:
        sys.exit("jwt-auth-bench verify-args failed: " + err)
    verify = json.loads(out)
    cases = all_cases(verify)
    if args.cases:
        wanted = set(args.cases.split(","))
        unknown = wanted - {c["id"] for c in cases}
        if unknown:
            sys.exit("unknown case(s) %s (one of %s)" % (
                ", ".join(sorted(unknown)), ", ".join(c["id"] for c in cases)))
        cases = [c for c in cases if c["id"] in wanted]
    if args.first_call:
        cases = [dict(c, ns=ONE, repeat=args.first_call) for c in cases]
    machine = run.machine_info()
    PROBE_WASM, machine["wasm"] = probe_module()
    run.log("host calls: %d kinds, %d rounds, %d s per run after %d s warm-up; Envoy on core "
            "%s, wrk -t1 -c%d on core %s" % (len(cases), args.rounds, args.seconds,
                                           args.warmup, run.ENVOY_CORE, args.connections,
                                           run.LOAD_CORE))
    test_lines = self_tests(verify)
    route_lines = route_check()
    for line in test_lines + route_lines:
        run.log(line)
    if args.checks_only:
        return
    results = {c["id"]: {"runs": []} for c in cases}
    t0 = time.time()
    for rnd in range(args.rounds):
        for c in (cases if rnd % 2 == 0 else cases[::-1]):
            runs, note = run_case(c, rnd, args)
            results[c["id"]]["runs"] += runs
            if note:
                results[c["id"]]["note"] = "round %d: %s" % (rnd + 1, note)
            run.log("  round %d %-26s %s%s" % (rnd + 1, c["id"], "  ".join(
                "N=%d %.1f" % (r["n"], r["cpu_us"]) for r in sorted(runs, key=lambda r: r["n"])),
                "  " + note if note else ""))
    for c in cases:
        r = results[c["id"]]
        if not r.get("note"):
            r.update(summarize(r["runs"]))
    run.log("\n%s\n\n(%.0f s)" % (table(cases, results), time.time() - t0))
    os.makedirs(run.RESULTS, exist_ok=True)
    path = FIRST_CALL_MD if args.first_call else RESULTS_MD
    with open(path, "w") as f:
        f.write(document(machine, args, cases, results, route_lines, test_lines))
    run.log("wrote %s" % os.path.relpath(path, run.ROOT))


if __name__ == "__main__":
    main()
