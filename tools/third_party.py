#!/usr/bin/env python3
"""The third-party notices of one shipped artifact.

The wasm module and the native library link every crate they depend on,
and the native one also AWS-LC's C and assembly (through aws-lc-sys), so a
release carries, beside each artifact, the list of what is inside it (crate,
version, licence, source) followed by the licence files those crates ship
(LICENSE*, COPYING*, NOTICE*), which is what their licences ask of a binary
redistribution.

    python3 tools/third_party.py --package jwt-auth-dynamic-module \
        --platform x86_64-unknown-linux-gnu --out dist/libjwt_auth_dynamic_module.so.third-party.txt

Reads `cargo metadata` (no network: the lock file's packages are already
fetched by the build). Only normal dependencies count: build scripts, procedural macros and
dev-dependencies are not part of the artifact.
"""

import argparse
import json
import os
import subprocess
import sys

LICENSE_PREFIXES = ("LICENSE", "LICENCE", "COPYING", "NOTICE")


def metadata(root, platform):
    cmd = ["cargo", "metadata", "--format-version", "1", "--locked",
           "--manifest-path", os.path.join(root, "Cargo.toml")]
    if platform:
        cmd += ["--filter-platform", platform]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("third_party: cargo metadata failed:\n" + out.stderr)
    return json.loads(out.stdout)


def linked_packages(meta, name):
    """Every package `name` links: the closure over normal dependencies."""
    by_id = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    roots = [p["id"] for p in meta["packages"]
             if p["name"] == name and p["id"] in meta["workspace_members"]]
    if not roots:
        sys.exit("third_party: no workspace package named %s" % name)
    seen, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]):
                todo.append(dep["pkg"])
    # A procedural macro runs in the compiler; none of its code is linked.
    return [by_id[pid] for pid in seen
            if not all("proc-macro" in t["kind"] for t in by_id[pid]["targets"])]


def license_files(package):
    """The licence files at the top of the package and one level down (a
    -sys crate keeps its C library's licence in the library's folder)."""
    top = os.path.dirname(package["manifest_path"])
    found = []
    for folder in [top] + sorted(
            os.path.join(top, d) for d in os.listdir(top)
            if os.path.isdir(os.path.join(top, d))):
        for entry in sorted(os.listdir(folder)):
            path = os.path.join(folder, entry)
            if entry.upper().startswith(LICENSE_PREFIXES) and os.path.isfile(path):
                found.append(path)
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--package", required=True)
    p.add_argument("--platform", default="")
    p.add_argument("--out", required=True)
    p.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = p.parse_args()
    meta = metadata(args.root, args.platform)
    ours = set(meta["workspace_members"])
    third = sorted((pkg for pkg in linked_packages(meta, args.package) if pkg["id"] not in ours),
                   key=lambda pkg: (pkg["name"], pkg["version"]))
    missing = [pkg["name"] for pkg in third if not pkg.get("license")]
    if missing:
        sys.exit("third_party: no licence declared by %s" % ", ".join(missing))
    lines = ["Third-party software in %s (%s)" % (args.package, args.platform or "any platform"),
             "", "%d crates, linked into the artifact:" % len(third), ""]
    for pkg in third:
        lines.append("- %s %s: %s (%s)" % (pkg["name"], pkg["version"], pkg["license"],
                                           pkg.get("repository") or "crates.io"))
    # One copy of each distinct text (most crates ship the same MIT and
    # Apache-2.0 files), headed by every crate that ships it.
    texts = {}
    for pkg in third:
        top = os.path.dirname(pkg["manifest_path"])
        for path in license_files(pkg):
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read().strip()
            texts.setdefault(text, []).append(
                "%s %s: %s" % (pkg["name"], pkg["version"], os.path.relpath(path, top)))
    for text, owners in texts.items():
        lines += ["", "=" * 78] + owners + ["=" * 78, "", text]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: %d crates" % (args.out, len(third)))


if __name__ == "__main__":
    main()
