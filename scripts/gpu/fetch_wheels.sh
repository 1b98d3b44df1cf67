#!/usr/bin/env bash
# Wheels the GPU image lacks (it has torch, timm, torchvision, tokenizers, safetensors, pytest, but an
# older transformers, and no PyAV or pycocotools), for its Python 3.12, into .whl/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/../.."
for spec in av pycocotools transformers==5.23.0; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "$spec"
done
ls -la .whl
