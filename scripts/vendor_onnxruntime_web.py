"""Vendor onnxruntime-web into the demo: the pinned npm tarball, its integrity checked, only the
WebAssembly build extracted into apps/demo/sam3_demo/static/vendor/onnxruntime-web/ (git-ignored).

    python scripts/vendor_onnxruntime_web.py [--force]     (run by `make install` and build_space.py)

The Point prompting tab decodes clicks in the browser with it; the page loads these files from the
demo's own server, never from a CDN. Nothing is downloaded when the files are already there.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

VERSION = "1.31.1"
URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{VERSION}.tgz"
# `dist.integrity` of the version in the npm registry's metadata (`npm view onnxruntime-web@1.31.1`).
INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
# The CPU (WebAssembly) build: the API as a classic script (global `ort`), the Emscripten loader it
# imports, and the runtime (SIMD; it runs single-threaded without SharedArrayBuffer), and package.json.
FILES = {
    "package/dist/ort.wasm.min.js": "ort.wasm.min.js",
    "package/dist/ort-wasm-simd-threaded.mjs": "ort-wasm-simd-threaded.mjs",
    "package/dist/ort-wasm-simd-threaded.wasm": "ort-wasm-simd-threaded.wasm",
    "package/package.json": "package.json",  # the licence (MIT) and version
}
VENDOR = (
    Path(__file__).resolve().parents[1]
    / "apps"
    / "demo"
    / "sam3_demo"
    / "static"
    / "vendor"
    / "onnxruntime-web"
)


def is_vendored(folder: Path = VENDOR) -> bool:
    """Whether `folder` holds every file of the pinned version."""
    stamp = folder / "VERSION"
    return (
        stamp.is_file()
        and stamp.read_text().strip() == VERSION
        and all((folder / n).is_file() for n in FILES.values())
    )


def check_integrity(data: bytes, integrity: str = INTEGRITY) -> None:
    """Raise ValueError when `data` does not match the npm `integrity` string (sha512-<base64>)."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise ValueError(f"unsupported integrity algorithm {algorithm!r}; expected sha512")
    got = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != expected:
        raise ValueError(f"onnxruntime-web {VERSION}: the tarball's sha512 is {got}, expected {expected}")


def vendor(folder: Path = VENDOR, force: bool = False, data: bytes | None = None) -> Path:
    """Download (unless `data` is given), check and extract the files into `folder`; returns it."""
    if is_vendored(folder) and not force:
        return folder
    if data is None:
        print(f"downloading {URL}", file=sys.stderr)
        with urllib.request.urlopen(URL, timeout=120) as response:
            data = response.read()
    check_integrity(data)
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member, name in FILES.items():
            try:
                source = tar.extractfile(member)
            except KeyError:
                source = None
            if source is None:
                raise ValueError(f"onnxruntime-web {VERSION}: {member} is missing from the tarball")
            (folder / name).write_bytes(source.read())
    (folder / "VERSION").write_text(VERSION + "\n")
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="download again even if the files are there")
    parser.add_argument("--out", type=Path, default=VENDOR)
    args = parser.parse_args(argv)
    print(f"onnxruntime-web {VERSION}: {vendor(args.out, force=args.force)}", file=sys.stderr)


if __name__ == "__main__":
    main()
