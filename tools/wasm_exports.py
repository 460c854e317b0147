#!/usr/bin/env python3
"""Keeps only the exports the filter implements in a wasm module (in place).

The proxy-wasm Rust SDK exports every callback of the ABI (response headers,
bodies, trailers, on_log, on_done, network and gRPC events...), whether the
filter overrides it or not. Envoy calls each exported callback for every
request it applies to and skips one the module does not export (treating it as
"continue"), so each unused export costs a call into the VM per request for
nothing. This removes them; `wasm-opt` then drops the code only they reached.

    python3 tools/wasm_exports.py MODULE.wasm         rewrite MODULE.wasm
    python3 tools/wasm_exports.py --list MODULE.wasm  print the exports

Standard library only. The export section is rewritten and every other
section is copied byte for byte, so running it twice changes nothing.
"""

import argparse
import os
import sys

# The callbacks the filter crate (filter/src) implements, plus what the ABI itself needs. A
# callback added to the filter must be added here, or Envoy will not call it
# (e2e/tests/e2e_packaging.rs checks the shipped module exports exactly these).
KEEP = (
    "memory",
    "_initialize",
    "proxy_abi_version_0_2_1",
    "proxy_on_memory_allocate",
    "proxy_on_vm_start",
    "proxy_on_configure",
    "proxy_on_context_create",
    "proxy_on_delete",
    "proxy_on_tick",
    "proxy_on_http_call_response",
    "proxy_on_request_headers",
)

WASM_HEADER = b"\0asm\x01\0\0\0"
EXPORT_SECTION = 7


def read_leb(data, i):
    value = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated LEB128 number")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def leb(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sections(module):
    """(id, payload) of every section, in order."""
    if module[:8] != WASM_HEADER:
        raise ValueError("not a wasm module (version 1)")
    i = 8
    while i < len(module):
        section_id = module[i]
        size, start = read_leb(module, i + 1)
        end = start + size
        if end > len(module):
            raise ValueError("section %d runs past the end of the module" % section_id)
        yield section_id, module[start:end]
        i = end


def exports(payload):
    """(name, raw entry bytes) of every entry of an export section."""
    count, i = read_leb(payload, 0)
    for _ in range(count):
        start = i
        length, i = read_leb(payload, i)
        name = payload[i:i + length].decode("utf-8")
        i += length + 1  # name, then the kind byte
        _, i = read_leb(payload, i)  # the index
        yield name, payload[start:i]


def export_names(module):
    return [name for sid, payload in sections(module) if sid == EXPORT_SECTION
            for name, _ in exports(payload)]


def keep_exports(module, keep):
    out = bytearray(WASM_HEADER)
    for section_id, payload in sections(module):
        if section_id == EXPORT_SECTION:
            kept = [raw for name, raw in exports(payload) if name in keep]
            payload = leb(len(kept)) + b"".join(kept)
        out += bytes([section_id]) + leb(len(payload)) + payload
    return bytes(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("module")
    p.add_argument("--list", action="store_true", help="print the exports and change nothing")
    args = p.parse_args()
    with open(args.module, "rb") as f:
        module = f.read()
    try:
        if args.list:
            print("\n".join(export_names(module)))
            return 0
        missing = [name for name in KEEP if name not in export_names(module)]
        if missing:
            print("wasm_exports: %s does not export %s" % (args.module, ", ".join(missing)),
                  file=sys.stderr)
            return 1
        rewritten = keep_exports(module, set(KEEP))
    except ValueError as e:
        print("wasm_exports: %s: %s" % (args.module, e), file=sys.stderr)
        return 1
    if rewritten != module:
        # Written in place: cargo hard-links its output, and a rename would
        # leave the other link with every export.
        with open(args.module, "r+b") as f:
            f.write(rewritten)
            f.truncate()
        dropped = len(export_names(module)) - len(KEEP)
        print("wasm_exports: %s: removed %d unused callback exports" % (
            os.path.relpath(args.module), dropped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
