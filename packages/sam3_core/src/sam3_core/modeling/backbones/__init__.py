"""Image backbones and their FPN necks."""
