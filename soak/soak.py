#!/usr/bin/env python3
"""Soak test: wrk drives a real Envoy with the jwt-auth
filter, with a mix of valid, invalid and revoked tokens, while the project's
revocation feed server revokes one more token every second.

    python3 soak/soak.py --duration 60s          (make soak DURATION=60s)

Processes: Envoy (the built wasm, --concurrency 2), the echo upstream (a
child process of this script, recording which token reached it and when),
the feed (`revocation-feed serve` on an embedded store, signed and bound
answers, long polls; revocations go in through its admin API)
and wrk (soak/soak.lua rotating through the requests this script writes).

At the end it prints a report and exits 1 when a must-be-zero count is not
zero:
  - a revoked token reached the upstream after its propagation window
    (poll interval + 1 s after the feed acknowledged the revocation),
  - a token that was valid at the time was refused by the filter,
  - an invalid token (or no token) reached the upstream,
  - Envoy's VmRSS grew more than 20 % + 10 MiB between the end of the warm-up
    and the end of the run.

Standard library only. Settings: soak/soak.json (see soak/README.md).
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import random
import re
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ISSUER = "https://soak.test"
AUDIENCE = "api"
CHILDREN = []


def log(msg):
    print("soak: " + msg, flush=True)


# --------------------------------------------------------------- tokens --


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret, claims, kid="soak"):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = (header + "." + payload).encode()
    sig = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return header + "." + payload + "." + b64url(sig)


def claims(sub, jti, now, **extra):
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "jti": jti,
         "iat": now - 5, "exp": now + 7200}
    c.update(extra)
    return c


# ----------------------------------------------------------------- feed --

# Words the feed refuses in its credentials (feed/README.md, "Credentials").
CREDENTIAL_WORDS = ("replace", "change", "example", "placeholder", "secret", "password",
                    "default", "sample", "dummy", "demo", "test")


def credential(make):
    """A value from make() that the feed's credential checks accept."""
    while True:
        value = make()
        if not any(w in value.lower() for w in CREDENTIAL_WORDS):
            return value


class Feed:
    """The project's revocation feed server (embedded store), started here."""

    def __init__(self, binary, run_dir):
        self.binary = binary
        self.dir = os.path.join(run_dir, "feed")
        self.admin_token = credential(lambda: os.urandom(24).hex())
        self.secret_b64 = credential(lambda: base64.b64encode(os.urandom(32)).decode())
        self.port = free_port()
        self.revoked_at = {}       # jti -> unix seconds (float) the feed acknowledged it
        self.proc = None

    def start(self):
        env = dict(os.environ, REVOCATION_FEED_ADMIN_TOKEN=self.admin_token,
                   REVOCATION_FEED_HMAC_SECRET_BASE64=self.secret_b64)
        self.proc = spawn([self.binary, "serve", "--data", self.dir,
                           "--listen", "127.0.0.1:%d" % self.port, "--log-level", "warn"],
                          os.path.join(self.dir + ".log"), env)
        wait_for("the feed server", 15, lambda: http_get(self.port, "/healthz")[0] == 200,
                 self.proc, self.dir + ".log")

    def revoke(self, jti, exp):
        body = json.dumps({"jti": jti, "exp": exp}).encode()
        req = urllib.request.Request(
            "http://127.0.0.1:%d/v1/revocations" % self.port, data=body, method="POST",
            headers={"authorization": "Bearer " + self.admin_token,
                     "content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            if resp.status != 201:
                raise SystemExit("soak: the feed refused revocation %s: %d" % (jti, resp.status))
        self.revoked_at[jti] = time.time()

    def polls(self):
        """Polls the feed answered (`revocation_feed_requests_total{endpoint="feed"}`)."""
        status, text = http_get(self.port, "/metrics")
        if status != 200:
            return 0
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("revocation_feed_requests_total{")
                       and 'endpoint="feed"' in line))


def reply_json(handler, body, extra_headers=None):
    """A 200 with a JSON body (and any extra headers) on an HTTP handler."""
    handler.send_response(200)
    handler.send_header("content-type", "application/json")
    for name, value in (extra_headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def get_request(self):
        # Headers and body go out in separate writes: without TCP_NODELAY,
        # Nagle and delayed ACKs add 40 ms to every response.
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


# ------------------------------------------------------------- upstream --


def run_upstream(port_file, record_file):
    """The echo upstream (own process): 200 for everything; records
    (arrival time, x-request-id, x-user-id, path) of every request."""
    records = []
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            rec = (time.time(), self.headers.get("x-request-id", ""),
                   self.headers.get_all("x-user-id") or [], self.path)
            with lock:
                records.append(rec)
            reply_json(self, b'{"ok":true}')

        def log_message(self, *_args):
            pass

    server = ThreadingServer(("127.0.0.1", 0), Handler)

    def dump(*_args):
        with lock:
            data = list(records)
        with open(record_file + ".tmp", "w") as f:
            for t, rid, users, path in data:
                f.write(json.dumps([t, rid, users, path]) + "\n")
        os.replace(record_file + ".tmp", record_file)
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


# ---------------------------------------------------------------- envoy --


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster(name, port):
    return {
        "name": name, "type": "STATIC", "connect_timeout": "2s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"idle_timeout": "30s"},
                "explicit_http_config": {"http_protocol_options": {}},
            }
        },
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
    }


ACCESS_LOG_FORMAT = ("%START_TIME(%s.%3f)% %RESPONSE_CODE% %REQ(:PATH)% %REQ(X-REQUEST-ID)% "
                     "%RESPONSE_CODE_DETAILS% %UPSTREAM_HOST%\n")


def bootstrap(cfg, wasm, plugin, port, upstream_port, feed_port, access_log):
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "soak",
                        "codec_type": "AUTO",
                        "normalize_path": True,
                        "merge_slashes": True,
                        "path_with_escaped_slashes_action": "REJECT_REQUEST",
                        "common_http_protocol_options": {"headers_with_underscores_action": "DROP_HEADER"},
                        "access_log": [{
                            "name": "envoy.access_loggers.file",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                                "path": access_log,
                                "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
                            },
                        }],
                        "route_config": {"name": "local", "virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"},
                                        "route": {"cluster": "upstream", "timeout": "15s"}}]}]},
                        "http_filters": [
                            {"name": "envoy.filters.http.wasm", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                "config": {
                                    "name": "jwt_auth", "root_id": "jwt_auth", "failure_policy": "FAIL_CLOSED",
                                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                                      "value": json.dumps(plugin)},
                                    "vm_config": {"vm_id": "jwt_auth", "runtime": "envoy.wasm.runtime.v8",
                                                  "code": {"local": {"filename": wasm}}},
                                }}},
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                        ],
                    },
                }]}],
            }],
            "clusters": [cluster("upstream", upstream_port), cluster("revocation_feed", feed_port)],
        },
    }


def plugin_config(cfg, secret, feed_secret_b64):
    return {
        "realm": "api",
        "providers": [{
            "name": "soak", "issuer": ISSUER, "audiences": [AUDIENCE],
            "jwks": {"keys": [{"kty": "oct", "kid": "soak", "alg": "HS256", "k": b64url(secret)}]},
            "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}],
        }],
        "rules": [{"match": {"prefix": "/"}, "requires": {"providers": ["soak"]}}],
        "revocation": {
            "cluster": "revocation_feed", "authority": "feed",
            "poll_interval_ms": cfg["poll_interval_ms"], "timeout_ms": cfg["feed_timeout_ms"],
            "hmac_secret_base64": feed_secret_b64,
            "max_staleness_seconds": cfg["max_staleness_seconds"], "on_stale": cfg["on_stale"],
        },
    }


def http_get(port, path, headers=None, timeout=5):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def spawn(argv, log_path, env=None):
    logf = open(log_path, "wb")
    p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, env=env)
    CHILDREN.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def cleanup():
    for p in CHILDREN:
        stop(p)


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def stats(admin_port, prefix="wasmcustom.jwt_auth."):
    _, text = http_get(admin_port, "/stats?filter=^" + prefix.replace(".", "\\."))
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if name.startswith(prefix) and value.strip().isdigit():
            out[name[len(prefix):]] = int(value)
    return out


def wait_for(what, timeout, check, proc=None, log_path=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    tail = ""
    if log_path:
        with open(log_path, "rb") as f:
            tail = "\n".join(f.read().decode("utf-8", "replace").splitlines()[-30:])
    raise SystemExit("soak: %s did not happen within %ss\n%s" % (what, timeout, tail))


# ------------------------------------------------------------------ run --


def parse_duration(text):
    m = re.fullmatch(r"\s*(\d+)\s*([smh]?)\s*", str(text))
    if not m:
        raise SystemExit("soak: bad duration %r (e.g. 60, 60s, 2m)" % text)
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_requests(path, entries):
    """The request list soak.lua loads: { {path, {header = value}}, ... }."""
    with open(path, "w") as f:
        f.write("return {\n")
        for p, auth in entries:
            hdrs = "{}" if auth is None else "{[\"Authorization\"] = %s}" % lua_string(auth)
            f.write("  {%s, %s},\n" % (lua_string(p), hdrs))
        f.write("}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", default=None, help="e.g. 60s (default: soak.json)")
    ap.add_argument("--config", default=os.path.join(HERE, "soak.json"))
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    ap.add_argument("--report", default=None, help="also write the report (JSON) here")
    ap.add_argument("--role", default="driver", help=argparse.SUPPRESS)
    ap.add_argument("--port-file", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--record-file", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "upstream":
        run_upstream(args.port_file, args.record_file)
        return 0

    with open(args.config) as f:
        cfg = json.load(f)
    duration = parse_duration(args.duration or cfg["duration"])
    warmup = min(cfg["warmup_seconds"], max(1, duration // 4))
    envoy_bin = os.environ.get("ENVOY_BIN") or os.path.join(ROOT, ".venv/bin/envoy")
    wasm = os.environ.get("JWT_AUTH_WASM") or os.path.join(
        ROOT, "target/wasm32-wasip1/release/jwt_auth_wasm.wasm")
    args.feed_bin = os.environ.get("REVOCATION_FEED_BIN") or os.path.join(
        ROOT, "target/debug/revocation-feed")
    for what, p in (("Envoy", envoy_bin), ("the wasm filter", wasm),
                    ("the revocation feed server", args.feed_bin)):
        if not os.path.isfile(p):
            raise SystemExit("soak: %s not found at %s (make .venv build soak-feed)" % (what, p))
    wrk = cfg.get("wrk", "wrk")
    if subprocess.run(["sh", "-c", "command -v %s" % wrk], capture_output=True).returncode != 0:
        raise SystemExit("soak: wrk not found (Debian package wrk; `make soak` installs it)")

    run_dir = tempfile.mkdtemp(prefix="jwt-auth-soak-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return soak(cfg, duration, warmup, envoy_bin, wasm, wrk, run_dir, args)
    finally:
        cleanup()
        if not args.keep:
            subprocess.run(["rm", "-rf", run_dir])
        else:
            log("files kept in " + run_dir)


def soak(cfg, duration, warmup, envoy_bin, wasm, wrk, run_dir, args):
    rng = random.Random()
    secret = os.urandom(32)
    now = int(time.time())
    poll_s = cfg["poll_interval_ms"] / 1000.0
    window = poll_s + 1.0

    # Tokens. Revocable ones are valid until the feed revokes them, one per
    # revoke_every_seconds; pre-revoked ones are revoked before Envoy starts.
    n_rev = int(duration / cfg["revoke_every_seconds"]) + 5
    tokens = {}   # id -> (class, token or None)
    for i in range(cfg["valid_tokens"]):
        tokens["valid-%d" % i] = ("valid", mint(secret, claims("valid-%d" % i, "valid-%d" % i, now)))
    for i in range(n_rev):
        tokens["rev-%d" % i] = ("revocable", mint(secret, claims("rev-%d" % i, "rev-%d" % i, now)))
    for i in range(cfg["prerevoked_tokens"]):
        tokens["pre-%d" % i] = ("prerevoked", mint(secret, claims("pre-%d" % i, "pre-%d" % i, now)))
    good = mint(secret, claims("bad-sig", "bad-sig", now))
    invalid = {
        "bad-signature": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "expired": mint(secret, claims("expired", "expired", now, iat=now - 7200, exp=now - 3600)),
        "wrong-issuer": mint(secret, claims("wrong-iss", "wrong-iss", now, iss="https://evil.test")),
        "unknown-key": mint(os.urandom(32), claims("unknown", "unknown", now), kid="other"),
        "garbage": "not.a.token",
        "missing": None,
    }
    for name, tok in invalid.items():
        tokens["invalid-" + name] = ("invalid", tok)

    # The rotation: weights per class, interleaved at random.
    entries = []
    for tid, (cls, tok) in tokens.items():
        weight = {"valid": 6, "revocable": 3, "prerevoked": 2, "invalid": 4}[cls]
        for k in range(weight):
            entries.append(("/soak/%s/%s?k=%d" % (cls, tid, k), None if tok is None else "Bearer " + tok))
    rng.shuffle(entries)
    requests_lua = os.path.join(run_dir, "requests.lua")
    write_requests(requests_lua, entries)

    # Feed, upstream, Envoy.
    feed = Feed(args.feed_bin, run_dir)
    feed.start()
    for i in range(cfg["prerevoked_tokens"]):
        feed.revoke("pre-%d" % i, now + 7200)
    port_file = os.path.join(run_dir, "upstream.port")
    record_file = os.path.join(run_dir, "upstream.jsonl")
    upstream = spawn([sys.executable, os.path.abspath(__file__), "--role", "upstream",
                      "--port-file", port_file, "--record-file", record_file],
                     os.path.join(run_dir, "upstream.log"))
    wait_for("the upstream start", 10, lambda: os.path.exists(port_file), upstream)
    with open(port_file) as f:
        upstream_port = int(f.read())
    port = free_port()
    access_log = os.path.join(run_dir, "access.log")
    plugin = plugin_config(cfg, secret, feed.secret_b64)
    config_path = os.path.join(run_dir, "envoy.json")
    with open(config_path, "w") as f:
        json.dump(bootstrap(cfg, wasm, plugin, port, upstream_port,
                            feed.port, access_log), f, indent=1)
    admin_file = os.path.join(run_dir, "admin.addr")
    envoy_log = os.path.join(run_dir, "envoy.log")
    envoy = spawn([envoy_bin, "-c", config_path, "--concurrency", str(cfg["envoy_concurrency"]),
                   "--disable-hot-restart", "--base-id", str(40000 + os.getpid() % 20000),
                   "-l", "warning", "--admin-address-path", admin_file,
                   "--file-flush-interval-msec", "500"], envoy_log)

    def admin_port():
        with open(admin_file) as f:
            return int(f.read().strip().rsplit(":", 1)[1])

    wait_for("Envoy LIVE", 30, lambda: os.path.exists(admin_file)
             and http_get(admin_port(), "/ready")[1].strip() == "LIVE", envoy, envoy_log)
    admin = admin_port()
    wait_for("the first feed poll", 15, lambda: stats(admin).get("revocation.fetch_ok", 0) > 0,
             envoy, envoy_log)
    # Sanity: a valid token passes, a pre-revoked one does not (every worker).
    sample_valid = tokens["valid-0"][1]
    wait_for("a valid token allowed", 10, lambda: http_get(
        port, "/soak/check", {"Authorization": "Bearer " + sample_valid})[0] == 200, envoy, envoy_log)
    if cfg["prerevoked_tokens"]:
        pre = tokens["pre-0"][1]
        wait_for("pre-revoked token refused", 10, lambda: all(http_get(
            port, "/soak/check", {"Authorization": "Bearer " + pre})[0] == 401 for _ in range(8)),
            envoy, envoy_log)
    log("Envoy pid %d on :%d, upstream :%d, feed :%d; %d tokens, %d requests in rotation; "
        "%ds with wrk -t%d -c%d, one revocation every %ss, propagation window %.1fs" % (
            envoy.pid, port, upstream_port, feed.port, len(tokens),
            len(entries), duration, cfg["wrk_threads"], cfg["wrk_connections"],
            cfg["revoke_every_seconds"], window))

    # Load, revocations, memory samples.
    env = dict(os.environ, SOAK_REQUESTS=requests_lua)
    wrk_out = os.path.join(run_dir, "wrk.txt")
    started = time.time()
    wrk_proc = subprocess.Popen(
        [wrk, "-t%d" % cfg["wrk_threads"], "-c%d" % cfg["wrk_connections"], "-d%ds" % duration,
         "--timeout", "5s", "-s", os.path.join(HERE, "soak.lua"), "http://127.0.0.1:%d/" % port],
        stdout=open(wrk_out, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    CHILDREN.append(wrk_proc)
    rss = []   # (seconds since start, KiB)
    next_revoke = started + cfg["revoke_every_seconds"]
    revoked_n = 0
    while wrk_proc.poll() is None:
        t = time.time()
        if t >= next_revoke and revoked_n < n_rev:
            feed.revoke("rev-%d" % revoked_n, now + 7200)
            revoked_n += 1
            next_revoke += cfg["revoke_every_seconds"]
        if not rss or t - started - rss[-1][0] >= 1.0:
            rss.append((t - started, rss_kib(envoy.pid)))
        if envoy.poll() is not None:
            stop(wrk_proc)
            raise SystemExit("soak: Envoy exited during the run")
        time.sleep(0.05)
    ended = time.time()
    rss.append((ended - started, rss_kib(envoy.pid)))
    with open(wrk_out) as f:
        wrk_text = f.read()
    # The access log flushes every second; decision counters reach Envoy on
    # each VM's tick (at most a second).
    time.sleep(1.2)
    envoy_stats = stats(admin)
    stop(envoy)
    stop(upstream)
    wait_for("the upstream record", 10, lambda: os.path.exists(record_file))

    report = analyse(cfg, feed, tokens, access_log, record_file, wrk_text, envoy_stats, rss,
                     started, warmup, window, revoked_n, duration)
    print_report(report)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if report["failures"] else 0


def analyse(cfg, feed, tokens, access_log, record_file, wrk_text, envoy_stats, rss,
            started, warmup, window, revoked_n, duration):
    # Envoy's access log: start time, status, path, request id, details.
    by_rid = {}
    classes = {}
    valid_refused = []
    reasons = {}
    unanswered = 0
    for line in open(access_log, errors="replace"):
        parts = line.split()
        if len(parts) < 5 or not parts[2].startswith("/soak/"):
            continue
        t, code, path, rid, details = float(parts[0]), int(parts[1]), parts[2], parts[3], parts[4]
        segs = path.split("?")[0].split("/")
        if len(segs) < 4:
            continue
        cls, tid = segs[2], segs[3]
        by_rid[rid] = (t, code, cls, tid)
        if code == 0:
            # wrk went away before the answer (the end of the run).
            unanswered += 1
            continue
        key = (cls, code)
        classes[key] = classes.get(key, 0) + 1
        if code != 200:
            reasons[details] = reasons.get(details, 0) + 1
        # A token valid at that moment, not let through (by the filter:
        # details "-", its local reply; or by Envoy / the upstream).
        was_valid = cls == "valid" or (
            cls == "revocable" and (tid not in feed.revoked_at or t < feed.revoked_at[tid]))
        if was_valid and code != 200:
            valid_refused.append((round(t - started, 3), tid, code, details))

    # What reached the upstream, timed by when Envoy received the request.
    late_revoked = []
    invalid_through = []
    upstream_total = 0
    last_allow_after = {}   # jti -> seconds from revocation to the last allowed request
    for line in open(record_file):
        arrived, rid, users, path = json.loads(line)
        if not path.startswith("/soak/") or path.startswith("/soak/check"):
            continue
        upstream_total += 1
        t, _code, cls, tid = by_rid.get(rid, (arrived, 200, path.split("/")[2], path.split("/")[3].split("?")[0]))
        expect_user = [tid]
        if cls in ("invalid", "prerevoked"):
            invalid_through.append((round(t - started, 3), tid, users))
        if users != expect_user and cls not in ("invalid",):
            invalid_through.append((round(t - started, 3), tid, "x-user-id %r" % users))
        if tid in feed.revoked_at and cls == "revocable":
            after = t - feed.revoked_at[tid]
            if after > 0:
                last_allow_after[tid] = max(last_allow_after.get(tid, 0.0), after)
            if after > window:
                late_revoked.append((round(t - started, 3), tid, round(after, 3)))

    steady = [kib for t, kib in rss if t >= warmup]
    rss_start = steady[0] if steady else rss[0][1]
    rss_end = rss[-1][1]
    limit = rss_start * 1.2 + 10 * 1024
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", wrk_text)
    total = int(m.group(1)) if m else 0
    errors = re.search(r"Socket errors: (.*)", wrk_text)
    delays = sorted(last_allow_after.values())

    failures = []
    if late_revoked:
        failures.append("%d revoked-token requests reached the upstream after the %.1fs window" % (
            len(late_revoked), window))
    if valid_refused:
        failures.append("%d requests with a then-valid token refused" % len(valid_refused))
    if invalid_through:
        failures.append("%d requests with an invalid/revoked token or a wrong identity reached the upstream"
                        % len(invalid_through))
    if rss_end > limit:
        failures.append("Envoy VmRSS grew from %d KiB to %d KiB (limit %d KiB)" % (rss_start, rss_end, limit))
    if total == 0:
        failures.append("wrk made no request")
    return {
        "duration_s": duration,
        "wrk_requests": total,
        "wrk_socket_errors": errors.group(1) if errors else "none",
        "requests_per_second": round(total / duration, 1) if duration else 0,
        "logged_requests": sum(classes.values()),
        "unanswered_at_the_end": unanswered,
        "by_class_and_status": {"%s %d" % k: v for k, v in sorted(classes.items())},
        "non_2xx_by_filter_reason": {k: v for k, v in sorted(envoy_stats.items()) if k.startswith("denied.")},
        "non_2xx_by_envoy_detail": dict(sorted(reasons.items())),
        "filter_stats": envoy_stats,
        "upstream_requests": upstream_total,
        "revocations_during_run": revoked_n,
        "feed_polls": feed.polls(),
        "propagation_window_s": window,
        "last_allow_after_revocation_s": {
            "max": round(delays[-1], 3) if delays else None,
            "median": round(delays[len(delays) // 2], 3) if delays else None,
            "revocations_with_an_allow_after": len(delays),
        },
        "revoked_after_window": len(late_revoked),
        "revoked_after_window_samples": late_revoked[:10],
        "valid_refused": len(valid_refused),
        "valid_refused_samples": valid_refused[:10],
        "invalid_reached_upstream": len(invalid_through),
        "invalid_reached_upstream_samples": invalid_through[:10],
        "rss_kib": {"after_warmup": rss_start, "end": rss_end, "max": max(k for _, k in rss),
                    "limit": int(limit), "warmup_s": warmup},
        "failures": failures,
    }


def print_report(r):
    line = "-" * 72
    print(line)
    print("soak report: %ds, %d requests (%.0f/s), wrk socket errors: %s" % (
        r["duration_s"], r["wrk_requests"], r["requests_per_second"], r["wrk_socket_errors"]))
    print(line)
    print("by token class and status (Envoy access log, %d requests; %d cut off by the end of wrk):" % (
        r["logged_requests"], r["unanswered_at_the_end"]))
    for k, v in r["by_class_and_status"].items():
        print("  %-22s %8d" % (k, v))
    print("non-2xx by reason (wasmcustom.jwt_auth.denied.*):")
    for k, v in r["non_2xx_by_filter_reason"].items():
        print("  %-30s %8d" % (k, v))
    other = {k: v for k, v in r["filter_stats"].items() if not k.startswith("denied.")}
    print("other filter stats: " + ", ".join("%s=%d" % kv for kv in sorted(other.items())))
    print("non-2xx by Envoy response detail (\"-\": the filter's own reply): " + ", ".join(
        "%s=%d" % kv for kv in r["non_2xx_by_envoy_detail"].items()))
    p = r["last_allow_after_revocation_s"]
    print("revocations during the run: %d (feed polls %d); last allow after a revocation: "
          "max %ss, median %ss (window %.1fs)" % (
              r["revocations_during_run"], r["feed_polls"], p["max"], p["median"],
              r["propagation_window_s"]))
    print("requests that reached the upstream: %d" % r["upstream_requests"])
    m = r["rss_kib"]
    print("Envoy VmRSS: %d KiB after %ds warm-up, %d KiB at the end (max %d, limit %d)" % (
        m["after_warmup"], m["warmup_s"], m["end"], m["max"], m["limit"]))
    print(line)
    print("revoked token reached upstream after window (must be 0): %d %s" % (
        r["revoked_after_window"], r["revoked_after_window_samples"] or ""))
    print("then-valid token refused                    (must be 0): %d %s" % (
        r["valid_refused"], r["valid_refused_samples"] or ""))
    print("invalid token / wrong identity at upstream  (must be 0): %d %s" % (
        r["invalid_reached_upstream"], r["invalid_reached_upstream_samples"] or ""))
    print("memory flat                                            : %s" % (
        "yes" if not any("VmRSS" in f for f in r["failures"]) else "NO"))
    print(line)
    print("soak: %s" % ("FAILED: " + "; ".join(r["failures"]) if r["failures"] else "passed"))


if __name__ == "__main__":
    sys.exit(main())
