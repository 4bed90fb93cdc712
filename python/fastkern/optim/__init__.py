"""fastkern.optim: optimisers and learning-rate schedules with PyTorch names."""

from . import lr_scheduler  # noqa: F401
from .adaptive import Adadelta, Adagrad, Adamax, NAdam, RAdam, RMSprop  # noqa: F401
from .lbfgs import LBFGS  # noqa: F401
from .optimizer import SGD, Adam, AdamW, Optimizer  # noqa: F401
