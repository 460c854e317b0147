#!/usr/bin/env python3
"""Turns an Envoy config that runs jwt-auth as a wasm filter into the same
config running the native dynamic module (`make run MODULE=native`).

The wasm filter stanza, from its `- name: envoy.filters.http.wasm` line to
its `configuration:` line, becomes an `envoy.filters.http.dynamic_modules`
stanza whose `filter_config` is the same StringValue: the plugin JSON is
kept byte for byte. Envoy finds the library as lib<module>.so on
ENVOY_DYNAMIC_MODULES_SEARCH_PATH.

usage: native_envoy_yaml.py IN.yaml OUT.yaml [MODULE_NAME]
"""
import sys


def convert(text: str, module: str) -> str:
    lines = text.split("\n")
    start = next(i for i, l in enumerate(lines) if l.strip() == "- name: envoy.filters.http.wasm")
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "configuration:")
    pad = " " * (len(lines[start]) - len(lines[start].lstrip()))
    stanza = [
        f"{pad}- name: envoy.filters.http.dynamic_modules",
        f"{pad}  typed_config:",
        f'{pad}    "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter',
        f"{pad}    dynamic_module_config:",
        f"{pad}      name: {module}",
        f"{pad}    filter_name: jwt_auth",
        f"{pad}    filter_config:",
    ]
    return "\n".join(lines[:start] + stanza + lines[end + 1 :])


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    module = sys.argv[3] if len(sys.argv) == 4 else "jwt_auth_dynamic_module"
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    try:
        out = convert(text, module)
    except StopIteration:
        print(f"{sys.argv[1]}: no envoy.filters.http.wasm stanza with a configuration", file=sys.stderr)
        return 1
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
