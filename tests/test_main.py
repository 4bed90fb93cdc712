"""The command line: `fastkern` (train on the embedded sample), options, export, baseline."""

import numpy as np
import pytest

import fastkern as fk
from fastkern.__main__ import main


def test_default_trains_cnn_on_embedded_sample_and_exports(capsys, tmp_path):
    rc = main(["--export", str(tmp_path / "m.safetensors")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "simple_cnn on embedded MNIST sample" in out
    assert out.count("epoch") >= 1 and "train_loss  valid_loss  accuracy" in out
    acc = float(out.split("accuracy ")[-1].split()[0])
    assert acc > 0.99
    learn = fk.load_learner(tmp_path / "m.safetensors")
    s = fk.data.mnist_sample()
    label, idx, probs = learn.predict(s.valid_x[-1])  # the last validation image is a 7
    assert label == "7" and idx.item() == 1 and probs.shape == (2,)


def test_options_mlp_epochs_bs(capsys):
    assert main(["train", "--model", "mlp", "--epochs", "2", "--bs", "128", "--lr", "3e-3"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line[:1].isdigit()]
    assert len(rows) == 2 and "batch size 128" in out


def test_image_folder_dataset(capsys, tmp_path):
    from test_data import make_image_folder

    make_image_folder(tmp_path)
    assert main(["train", "--dataset", str(tmp_path), "--size", "16", "--bs", "2", "--epochs", "1"]) == 0
    assert "2 classes" in capsys.readouterr().out


def test_errors_are_messages(capsys):
    assert main(["train", "--dataset", "no/such/folder"]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["train", "--device", "tpu"]) == 2
    assert "tpu" in capsys.readouterr().err


def test_baseline_still_works(capsys):
    assert main(["baseline"]) == 0
    out = capsys.readouterr().out
    acc = float([line for line in out.splitlines() if line.strip().startswith("all")][0].split()[-1])
    assert acc == pytest.approx(0.9511, abs=0.002) and np.isfinite(acc)
