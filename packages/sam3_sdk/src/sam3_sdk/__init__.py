"""Task-oriented SAM 3: plain Python and numpy in and out.

from sam3_sdk import Sam3
sam = Sam3.from_pretrained("facebook/sam3")
obj = sam.segment_object("photo.jpg", points=[(210, 350)], labels=[1])

from sam3_sdk import VideoTracker, track_object     # video with either tracker: SAM 3 or EdgeTAM
tracker = VideoTracker.from_pretrained("yonigozlan/edgetam-video-1")
for frame in track_object(tracker, "clip.mp4", {1: dict(frame=0, points=[(210, 350)])}): ...

for frame in sam.track_concept("clip.mp4", ["person", "dog"]): ...   # every instance of phrases

Layers, each importing only those below it: results, RLE, images, video I/O, exports and the
`LRUCache` at the bottom; the shared `FeatureStore`; the predictors (`ImagePredictor`,
`ConceptPredictor`, `MaskGenerator`, `VideoTracker`, `ConceptVideoTracker`); the sessions (`ImageSession`,
`VideoSession`); the `Sam3` facade on top.
"""

from .cache import LRUCache
from .concept_predictor import ConceptPredictor
from .concept_video import ConceptVideoTracker
from .features import FeatureStore, ImageFeatures
from .image_predictor import ImagePredictor
from .mask_generator import MaskGenerator
from .model import Sam3
from .onnx_export import OnnxExportRefused, export_onnx
from .results import Instances, ObjectMasks
from .sessions import ImageSession
from .tracking import track_concept, track_object
from .video import SessionBusyError, VideoSession
from .video_io import VideoReader, open_video
from .video_results import VideoFrameMasks, VideoMasks
from .video_tracker import VideoTracker

__version__ = "0.1.0"

__all__ = [
    "ConceptPredictor",
    "ConceptVideoTracker",
    "FeatureStore",
    "ImageFeatures",
    "ImagePredictor",
    "ImageSession",
    "Instances",
    "LRUCache",
    "MaskGenerator",
    "ObjectMasks",
    "OnnxExportRefused",
    "Sam3",
    "SessionBusyError",
    "VideoFrameMasks",
    "VideoMasks",
    "VideoReader",
    "VideoSession",
    "VideoTracker",
    "export_onnx",
    "open_video",
    "track_concept",
    "track_object",
]
