"""The SAM 3 Gradio demo: Concept segmentation, Point prompting and Video tracking tabs."""
