"""fastkern.vision: models (ResNets, EfficientNet-Lite0) and vision_learner (a pretrained body,
fastai's head, fine_tune)."""

from . import models  # noqa: F401
from .learner import (  # noqa: F401
    AdaptiveConcatPool2d,
    cnn_learner,
    create_body,
    create_head,
    imagenet_stats,
    model_meta,
    vision_learner,
)
