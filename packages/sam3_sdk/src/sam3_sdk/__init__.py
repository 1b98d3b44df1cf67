"""Task-oriented SAM 3: plain Python and numpy in and out.

from sam3_sdk import Sam3
sam = Sam3.from_pretrained("facebook/sam3")
obj = sam.segment_object("photo.jpg", points=[(210, 350)], labels=[1])
"""

from .model import ImageFeatures, Sam3
from .results import Instances, ObjectMasks
from .sessions import ImageSession

__version__ = "0.1.0"

__all__ = ["ImageFeatures", "ImageSession", "Instances", "ObjectMasks", "Sam3"]

from .video import VideoFrameMasks, VideoMasks, VideoSession  # noqa: E402
from .video_io import VideoReader, open_video  # noqa: E402

__all__ += ["VideoFrameMasks", "VideoMasks", "VideoReader", "VideoSession", "open_video"]
