"""The `sam3` command line: batch concept / object / everything segmentation of images and
tracking through videos, on this machine or on a Ray cluster.

Modules, bottom to top: `arguments` (the parser, prompt specs, exit codes), `inputs` (files,
folders and globs; images decoded ahead of the model), `progress` (bar and summary), `outputs`
(COCO JSON, PNG index masks, overlays, video exports, resume state), `jobs` (what each command
computes for one image or video), `runners` (the local loops), `on_ray` (the same jobs on Ray) and
`main` (the `sam3` entry point).
"""

from .main import main

__all__ = ["main"]
