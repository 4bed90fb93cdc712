"""fastkern: tensors with hand-written C++ kernels and a C++ autograd engine,
PyTorch names and semantics, and a fastai-style training layer on top."""

from . import _C
from ._C import Tensor, device, dtype  # noqa: F401
from ._C import float32, float64, int64, uint8  # noqa: F401
from ._C import *  # noqa: F401,F403  (ops bound in C++: exp, sum, matmul, where, cat, ...)
from ._creation import (  # noqa: F401
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    get_default_device,
    get_default_dtype,
    linspace,
    logspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    set_default_device,
    set_default_dtype,
    tensor,
    zeros,
    zeros_like,
)
from ._random import initial_seed, manual_seed, seed  # noqa: F401
from ._grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from . import _tensor  # noqa: F401  (Python-side Tensor methods: repr, tolist, __array__)
from ._tensor_str import get_printoptions, printoptions, set_printoptions  # noqa: F401
from ._size import Size, broadcast_shapes  # noqa: F401  (also makes x.shape and x.size() Sizes)
from . import _legacy  # noqa: F401  (Tensor.type)
from ._legacy import BoolTensor, ByteTensor, DoubleTensor, FloatTensor, LongTensor  # noqa: F401
from . import accelerator, autograd, backends, cuda, data, linalg, nn, optim, utils  # noqa: F401
from .linalg import tensor_norm as norm  # noqa: F401  (torch.norm)
from . import _composite
from . import metrics, models  # noqa: F401
from . import vision  # noqa: F401  (after models: it registers its architectures there)
from .data import DataLoader, DataLoaders  # noqa: F401
from . import callback  # noqa: F401
from .callback import EarlyStoppingCallback, SaveModelCallback, TerminateOnNaNCallback  # noqa: F401
from .learner import Callback, Learner, Recorder, load_learner  # noqa: F401
from .interpret import ClassificationInterpretation  # noqa: F401
from .metrics import F1Score, Precision, Recall, accuracy, error_rate, top_k_accuracy  # noqa: F401
from .serialization import load, save  # noqa: F401
from .torch_core import default_device  # noqa: F401

bool = _C.bool  # noqa: A001  (fastkern.bool, as torch.bool)
float = float32  # noqa: A001
double = float64
long = int64

__version__ = "0.1.0"


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(t):
    return t.numel()


globals().update({f.__name__: f for f in _composite.FUNCTIONS})  # fastkern.split, fastkern.gather, ...
