#!/usr/bin/env python3
"""Write the jwt-auth-wasm filter as OCI image layouts that Istio can pull.

    tools/oci_layout.py build --wasm dist/plugin.wasm --version 0.1.0 --out dist/oci
    tools/oci_layout.py digest dist/oci/compat
    tools/oci_layout.py extract dist/oci/wasm OUT.wasm

`build` writes two OCI image layouts (https://github.com/opencontainers/image-spec,
image-layout.md), one per format that Istio's wasm image fetcher
(istio/istio pkg/wasm/imagefetcher.go) accepts:

  OUT/compat   the "compat" variant: an ordinary OCI image. Manifest annotation
               module.wasm.image/variant=compat, a normal image config
               (os wasip1, architecture wasm), and exactly one layer of type
               application/vnd.oci.image.layer.v1.tar+gzip: a gzipped tar whose
               only member is plugin.wasm. Any registry and tool that handles
               container images handles this one.
  OUT/wasm     the "wasm artifact" (Istio calls it the oci variant): config of
               type application/vnd.module.wasm.config.v1+json (the runtime
               config: type envoy_proxy, ABI versions, root ids) and exactly TWO
               layers, as Istio requires: that runtime config again
               (application/vnd.module.wasm.config.v1+json) and the raw module
               (application/vnd.module.wasm.content.layer.v1+wasm).

The output is byte-for-byte reproducible: tar members have mtime
$SOURCE_DATE_EPOCH (default 0), uid/gid 0, no user or group names, mode 0644;
gzip has mtime 0 and no file name; JSON is written with sorted keys and no
whitespace. The same plugin.wasm and version always give the same digests.

Each layout's index.json tags its manifest with the version
(org.opencontainers.image.ref.name), so skopeo can address it as
`oci:OUT/compat:VERSION` (or `oci:OUT/compat`, since it holds one manifest).

The manifest digest is what a WasmPlugin's `sha256` must hold for an oci:// URL
(Istio compares it with the digest of the manifest it pulled, as hex without the
"sha256:" prefix). `build` prints both digests and records them, with the wasm's
own sha256, in OUT/digests.json.

Python 3 standard library only.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile

OCI_LAYOUT_VERSION = "1.0.0"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
MT_WASM_CONTENT = "application/vnd.module.wasm.content.layer.v1+wasm"
VARIANT_ANNOTATION = "module.wasm.image/variant"
WASM_FILE = "plugin.wasm"
WASM_MAGIC = b"\0asm"
# The ABI this filter exports (proxy-wasm Rust SDK 0.2.x).
ABI_VERSIONS = ["proxy_abi_version_0_2_1"]
ROOT_IDS = ["jwt_auth"]


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


class Layout:
    """An OCI image layout directory being written."""

    def __init__(self, path):
        self.path = path
        if os.path.exists(path):
            shutil.rmtree(path)
        os.makedirs(os.path.join(path, "blobs", "sha256"))
        with open(os.path.join(path, "oci-layout"), "wb") as f:
            f.write(canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))

    def blob(self, media_type, data, annotations=None):
        """Stores a blob; returns its descriptor."""
        digest = sha256_hex(data)
        with open(os.path.join(self.path, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        desc = {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
        if annotations:
            desc["annotations"] = annotations
        return desc

    def finish(self, manifest, ref_name):
        """Stores the manifest and writes index.json; returns the manifest descriptor."""
        desc = self.blob(MT_MANIFEST, canonical_json(manifest))
        desc["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [desc]}
        with open(os.path.join(self.path, "index.json"), "wb") as f:
            f.write(canonical_json(index))
        return desc


def source_date_epoch():
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    try:
        return int(value)
    except ValueError:
        sys.exit(f"SOURCE_DATE_EPOCH is not a number: {value!r}")


def deterministic_tar_gz(name, data, mtime):
    """A gzipped tar with the single member `name`, identical on every run."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = mtime
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    # gzip.compress writes no file name; mtime=0 keeps the header constant.
    return tar_bytes, gzip.compress(tar_bytes, compresslevel=9, mtime=0)


def common_annotations(version, source):
    ann = {
        "org.opencontainers.image.title": "jwt-auth-wasm",
        "org.opencontainers.image.description": "proxy-wasm JWT authentication filter for Envoy and Istio",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.licenses": "Apache-2.0",
    }
    if source:
        ann["org.opencontainers.image.source"] = source
    return ann


def build_compat(out, wasm, version, mtime, source):
    layout = Layout(out)
    tar_bytes, tgz = deterministic_tar_gz(WASM_FILE, wasm, mtime)
    layer = layout.blob(MT_TAR_GZIP, tgz)
    config = {
        "architecture": "wasm",
        "os": "wasip1",
        "config": {"Labels": {"org.opencontainers.image.version": version}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256_hex(tar_bytes)]},
    }
    config_desc = layout.blob(MT_IMAGE_CONFIG, canonical_json(config))
    annotations = common_annotations(version, source)
    annotations[VARIANT_ANNOTATION] = "compat"
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": config_desc,
        "layers": [layer],
        "annotations": annotations,
    }
    return layout.finish(manifest, version)


def build_wasm_artifact(out, wasm, version, source):
    layout = Layout(out)
    runtime_config = {
        "type": "envoy_proxy",
        "abiVersions": ABI_VERSIONS,
        "config": {"root_ids": ROOT_IDS},
    }
    config_bytes = canonical_json(runtime_config)
    config_desc = layout.blob(MT_WASM_CONFIG, config_bytes)
    config_layer = layout.blob(
        MT_WASM_CONFIG, config_bytes, {"org.opencontainers.image.title": "runtime-config.json"}
    )
    content_layer = layout.blob(
        MT_WASM_CONTENT, wasm, {"org.opencontainers.image.title": WASM_FILE}
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": config_desc,
        "layers": [config_layer, content_layer],
        "annotations": common_annotations(version, source),
    }
    return layout.finish(manifest, version)


def cmd_build(args):
    with open(args.wasm, "rb") as f:
        wasm = f.read()
    if not wasm.startswith(WASM_MAGIC):
        sys.exit(f"{args.wasm} is not a wasm module")
    mtime = source_date_epoch()
    os.makedirs(args.out, exist_ok=True)
    compat = build_compat(os.path.join(args.out, "compat"), wasm, args.version, mtime, args.source)
    artifact = build_wasm_artifact(os.path.join(args.out, "wasm"), wasm, args.version, args.source)
    record = {
        "version": args.version,
        "wasm_sha256": sha256_hex(wasm),
        "wasm_size": len(wasm),
        "compat": {"layout": "compat", "manifest_digest": compat["digest"], "manifest_size": compat["size"]},
        "wasm": {"layout": "wasm", "manifest_digest": artifact["digest"], "manifest_size": artifact["size"]},
    }
    with open(os.path.join(args.out, "digests.json"), "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")
    for name, desc in (("compat", compat), ("wasm", artifact)):
        print(f"{name:7s} {os.path.join(args.out, name)}  manifest {desc['digest']}")
    print(f"plugin.wasm sha256:{record['wasm_sha256']} ({len(wasm)} bytes)")
    print("A WasmPlugin with url oci://REGISTRY/REPO:TAG takes the manifest digest, without")
    print("'sha256:', as its sha256 (the image pushed must be this exact manifest).")


def read_layout(path):
    with open(os.path.join(path, "index.json"), "rb") as f:
        index = json.load(f)
    manifests = index.get("manifests", [])
    if len(manifests) != 1:
        sys.exit(f"{path}: expected one manifest in index.json, found {len(manifests)}")
    desc = manifests[0]
    manifest = json.loads(read_blob(path, desc["digest"]))
    return desc, manifest


def read_blob(path, digest):
    algo, hexd = digest.split(":", 1)
    with open(os.path.join(path, "blobs", algo, hexd), "rb") as f:
        data = f.read()
    if sha256_hex(data) != hexd:
        sys.exit(f"{path}: blob {digest} does not match its digest")
    return data


def extract_wasm(path):
    """The module inside a layout, the way Istio's fetcher finds it."""
    _, manifest = read_layout(path)
    layers = manifest["layers"]
    if layers and layers[-1]["mediaType"] == MT_TAR_GZIP:
        tgz = read_blob(path, layers[-1]["digest"])
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tgz)), mode="r:") as tar:
            for member in tar.getmembers():
                if os.path.basename(member.name) == WASM_FILE:
                    return tar.extractfile(member).read()
        sys.exit(f"{path}: no {WASM_FILE} in the layer")
    if len(layers) != 2:
        sys.exit(f"{path}: a wasm artifact needs exactly 2 layers, found {len(layers)}")
    for layer in layers:
        if layer["mediaType"] == MT_WASM_CONTENT:
            return read_blob(path, layer["digest"])
    sys.exit(f"{path}: no {MT_WASM_CONTENT} layer")


def cmd_digest(args):
    desc, _ = read_layout(args.layout)
    print(desc["digest"])


def cmd_extract(args):
    data = extract_wasm(args.layout)
    with open(args.output, "wb") as f:
        f.write(data)
    print(f"{args.output}: sha256:{sha256_hex(data)} ({len(data)} bytes)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write dist/oci/compat and dist/oci/wasm")
    b.add_argument("--wasm", required=True, help="the optimized module (dist/plugin.wasm)")
    b.add_argument("--version", required=True, help="image version / tag (the crate version)")
    b.add_argument("--out", required=True, help="output directory (dist/oci)")
    b.add_argument("--source", default="", help="org.opencontainers.image.source annotation")
    b.set_defaults(func=cmd_build)
    d = sub.add_parser("digest", help="print the manifest digest of a layout")
    d.add_argument("layout")
    d.set_defaults(func=cmd_digest)
    e = sub.add_parser("extract", help="write the module inside a layout to a file")
    e.add_argument("layout")
    e.add_argument("output")
    e.set_defaults(func=cmd_extract)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
