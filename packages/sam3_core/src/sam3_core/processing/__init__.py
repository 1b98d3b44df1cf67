"""Processors: images, videos and prompts in, model inputs out; model outputs back to pixels."""
