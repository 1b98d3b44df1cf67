"""Video tracking: the inference session (state) and the tracking engine (math)."""
