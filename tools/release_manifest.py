#!/usr/bin/env python3
"""Write dist/manifest.json for a release build of the jwt-auth-wasm filter.

    tools/release_manifest.py --wasm dist/plugin.wasm --raw target/.../jwt_auth_wasm.wasm \
        --version 0.1.0 --out dist/manifest.json [--profile P] [--wasm-opt-flags "-Oz"]

Fields: name, version, file, versioned_file, sha256, size, raw_size, build_date
(UTC, RFC 3339; $SOURCE_DATE_EPOCH when set), cargo_profile, wasm_opt_flags,
wasm_opt_version, rustc_version, git_commit (with "-dirty" when the work tree
has changes; empty outside git). Python 3 standard library only.
"""

import argparse
import datetime
import hashlib
import json
import os
import subprocess


def command_output(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def git_commit(root):
    commit = command_output(["git", "-C", root, "rev-parse", "HEAD"])
    if commit and command_output(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"]):
        commit += "-dirty"
    return commit


def build_date():
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
        if epoch
        else datetime.datetime.now(datetime.timezone.utc)
    )
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    p = argparse.ArgumentParser(description="write dist/manifest.json")
    p.add_argument("--wasm", required=True)
    p.add_argument("--raw", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--profile", default="")
    p.add_argument("--wasm-opt-flags", default="")
    p.add_argument("--root", default=".")
    args = p.parse_args()
    with open(args.wasm, "rb") as f:
        wasm = f.read()
    manifest = {
        "name": "jwt-auth-wasm",
        "version": args.version,
        "file": os.path.basename(args.wasm),
        "versioned_file": f"jwt-auth-wasm-{args.version}.wasm",
        "sha256": hashlib.sha256(wasm).hexdigest(),
        "size": len(wasm),
        "raw_size": os.path.getsize(args.raw),
        "build_date": build_date(),
        "cargo_profile": args.profile,
        "wasm_opt_flags": args.wasm_opt_flags,
        "wasm_opt_version": command_output(["wasm-opt", "--version"]),
        "rustc_version": command_output(["rustc", "--version"]),
        "git_commit": git_commit(args.root),
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
