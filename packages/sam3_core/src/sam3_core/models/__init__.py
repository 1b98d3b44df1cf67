"""The public models: thin compositions of the parts in `sam3_core.modeling`."""
