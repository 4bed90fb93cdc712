"""fastkern.nn: layers and losses with PyTorch names."""

from . import functional, init  # noqa: F401
from .layers import (  # noqa: F401
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    ConstantPad2d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    GELU,
    Hardtanh,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
    Tanh,
    ZeroPad2d,
)
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss  # noqa: F401
from .module import Module, ModuleList, Sequential  # noqa: F401
from .parameter import Parameter  # noqa: F401
