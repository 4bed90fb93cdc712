"""``from fastkern.vision.all import *``: the names a fast.ai lesson-1 notebook uses, as fastai's
``fastai.vision.all``, so it ports by changing its import."""

from .. import nn, optim  # noqa: F401
from ..callback import EarlyStoppingCallback, SaveModelCallback  # noqa: F401
from ..data import (  # noqa: F401
    Brightness,
    CategoryBlock,
    Contrast,
    DataBlock,
    DataLoader,
    DataLoaders,
    Dihedral,
    Flip,
    GrandparentSplitter,
    ImageBlock,
    ImageDataLoaders,
    Normalize,
    PadMode,
    PILImage,
    PILImageBW,
    RandomResizedCrop,
    RandomResizedCropGPU,
    RandomSplitter,
    Resize,
    ResizeMethod,
    Rotate,
    Warp,
    Zoom,
    aug_transforms,
    get_image_files,
    imagenet_stats,
    parent_label,
    verify_images,
)
from ..interpret import ClassificationInterpretation  # noqa: F401
from ..learner import Learner, load_learner  # noqa: F401
from ..metrics import accuracy, error_rate  # noqa: F401
from ..torch_core import default_device, to_device  # noqa: F401
from .learner import AdaptiveConcatPool2d, cnn_learner, create_body, create_head, vision_learner  # noqa: F401
from .models import efficientnet_lite0, resnet18, resnet34, resnet50  # noqa: F401
