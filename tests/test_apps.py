"""fastkern serve and fastkern clean over HTTP (urllib against a server on an ephemeral port), and
the cleaner's apply / undo / recover from Python and the command line."""

import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest

import fastkern as fk
from apps_data import build, copy_dataset, snapshot
from fastkern.__main__ import main
from fastkern.apps import clean, serve

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(pristine dataset, exported model): made once for the module."""
    return build(tmp_path_factory.mktemp("apps"))


@pytest.fixture
def data(built, tmp_path):
    """A fresh copy of the dataset, for the tests that change it."""
    return copy_dataset(built[0], tmp_path / "data")


@pytest.fixture
def server(built):
    with serve.make_server(built[1], port=0, quiet=True) as s:
        yield s


def call(url, data=None, headers=None, method=None):
    """(status, parsed JSON or raw bytes) of one request; 4xx and 5xx answers included."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, body, ctype = r.status, r.read(), r.headers.get_content_type()
    except urllib.error.HTTPError as e:
        status, body, ctype = e.code, e.read(), e.headers.get_content_type()
    return status, json.loads(body) if ctype == "application/json" else body


def multipart(field, filename, payload, boundary="fastkernTestBoundary"):
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"'
            + (f'; filename="{filename}"' if filename else "")
            + "\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def photo(data, split="val", cls="bees"):
    return sorted((Path(data) / split / cls).glob("*.jpg"))[0]


def png_claiming(w, h):
    """A PNG whose header says w x h (its checksum fixed) but that holds one row of data: the
    pixel check must refuse it from the header alone."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    raw = bytearray(buf.getvalue())
    ihdr = raw[16:29]  # after the signature and IHDR's length and type: 13 bytes of data
    ihdr[0:8] = struct.pack(">II", w, h)
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    return bytes(raw)


# -- serve ------------------------------------------------------------------------------------
def test_predict_answers_class_index_and_probabilities(server, built, tmp_path):
    f = tmp_path / "big.jpg"  # large enough for the JPEG to be decoded at 1/4 scale, as from a file
    with Image.open(photo(built[0])) as im:
        im.resize((200, 160)).save(f)
    learn = fk.load_learner(built[1])
    label, idx, probs = learn.predict(str(f))
    for body, headers in (multipart("file", f.name, f.read_bytes()), (f.read_bytes(), {})):
        status, ans = call(server.url + "predict", body, headers)
        assert status == 200, ans
        assert ans["class"] == label and ans["index"] == int(idx.item())
        assert ans["probabilities"] == pytest.approx(dict(zip(["ants", "bees"], probs.tolist())), abs=1e-6)
        assert [t["class"] for t in ans["top"]] == sorted(ans["probabilities"], key=lambda c: -ans["probabilities"][c])
    status, health = call(server.url + "health")
    assert status == 200 and health["status"] == "ok" and health["classes"] == ["ants", "bees"]
    status, page = call(server.url)
    assert status == 200 and b'type="file"' in page and b"/predict" not in page.replace(b"'predict'", b"")
    assert b"http://" not in page and b"https://" not in page and b"<link" not in page  # no external resource


def test_bad_uploads_are_4xx_json_and_the_server_keeps_answering(server, built):
    jpeg = photo(built[0]).read_bytes()
    url = server.url + "predict"
    cases = {
        "not an image": (b"just some text, certainly not a picture", {}, 415),
        "truncated JPEG": (jpeg[: len(jpeg) // 2], {}, 400),
        "200 megapixels": (png_claiming(20000, 10000), {}, 413),
        "60 megapixels": (png_claiming(10000, 6000), {}, 413),
        "empty raw body": (b"", {}, 400),
        "empty file part": (*multipart("file", "x.jpg", b""), 400),
        "no file part": (*multipart("caption", None, b"hello"), 400),
        "no boundary": (jpeg, {"Content-Type": "multipart/form-data"}, 400),
    }
    for what, (body, headers, expected) in cases.items():
        status, ans = call(url, body, headers)
        assert status == expected and isinstance(ans, dict) and ans["error"], (what, status, ans)
    for w, h in ((20000, 10000), (10000, 6000)):
        assert "limit of 50 megapixels" in call(url, png_claiming(w, h))[1]["error"]
    assert call(server.url + "predict")[0] == 405  # a GET
    assert call(server.url + "nowhere")[0] == 404
    assert call(server.url + "health", headers={"Host": "attacker.example"})[0] == 403  # DNS rebinding
    assert call(server.url + "health")[0] == 200


def test_byte_limit(built):
    with serve.make_server(built[1], port=0, max_bytes=1000, quiet=True) as s:
        status, ans = call(s.url + "predict", photo(built[0]).read_bytes() + bytes(5000))
        assert status == 413 and "limit is 1000" in ans["error"]
        assert call(s.url + "health")[0] == 200


def test_concurrent_predictions_are_all_answered(server, built):
    files = sorted(Path(built[0]).rglob("*.jpg"))
    learn = fk.load_learner(built[1])
    expected = {f.name: learn.predict(str(f))[0] for f in files}
    results, errors = {}, []

    def worker(f):
        try:
            for _ in range(3):
                status, ans = call(server.url + "predict", f.read_bytes())
                results.setdefault(f.name, set()).add((status, ans["class"]))
        except Exception as e:  # reported below: an exception in a thread would be lost
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == {name: {(200, label)} for name, label in expected.items()}


def test_serve_refuses_what_is_not_an_image_classifier(tmp_path, capsys):
    learn = fk.Learner(None, fk.nn.Linear(4, 2), loss_func=fk.nn.CrossEntropyLoss(), progress=False)
    tensor_model = learn.export(tmp_path / "linear.safetensors")
    with pytest.raises(ValueError, match="does not take images"):
        serve.make_server(tensor_model, port=0)
    assert main(["serve", str(tmp_path / "missing.safetensors"), "--port", "0"]) == 2
    assert "no model file" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    assert main(["serve", str(tmp_path / "junk.safetensors"), "--port", "0"]) == 2
    assert "fastkern serve: error:" in capsys.readouterr().err


def test_the_commands_serve_until_interrupted(built, data):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for argv in (["serve", str(built[1])], ["clean", str(data), "--model", str(built[1])]):
        cmd = [sys.executable, "-m", "fastkern", *argv, "--port", "0", "--quiet"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        try:
            line = p.stdout.readline()  # fastkern serve: serving on http://127.0.0.1:PORT/ (Ctrl-C stops)
            url = line.split("serving on ")[1].split()[0]
            assert call(url + "health")[1]["status"] == "ok"
            assert b"<script>" in call(url)[1]
        finally:
            p.send_signal(signal.SIGINT)
            assert p.wait(timeout=30) == 0, argv


def test_a_client_that_stops_sending_gets_408(built, monkeypatch):
    import socket

    from fastkern.apps import web

    monkeypatch.setattr(web._Handler, "timeout", 0.5)
    with serve.make_server(built[1], port=0, quiet=True) as s:
        with socket.create_connection(s.server_address[:2]) as c:
            c.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nonly this")
            c.settimeout(10)
            assert c.recv(100).startswith(b"HTTP/1.0 408")
        assert call(s.url + "health")[0] == 200


# -- clean: the page's API --------------------------------------------------------------------
@pytest.fixture
def cleaner(data, built):
    with clean.make_server(data, built[1], port=0, quiet=True) as s:
        yield s


def post(url, obj, content_type="application/json"):
    return call(url, json.dumps(obj).encode(), {"Content-Type": content_type})


def test_clean_lists_images_by_loss_and_by_confidence(cleaner, data):
    (data / "train" / "ants" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    status, ans = call(cleaner.url + "api/items")
    assert status == 200 and ans["splits"] == ["train", "val"] and ans["classes"] == ["ants", "bees"]
    items = ans["items"]
    assert len(items) == 19 and items[0]["path"] == "train/ants/broken.jpg" and items[0]["error"]
    losses = [r["loss"] for r in items[1:]]
    assert losses == sorted(losses, reverse=True) and all(r["label"] == r["path"].split("/")[1] for r in items)
    probs = [r["prob"] for r in call(cleaner.url + "api/items?order=confidence")[1]["items"][1:]]
    assert probs == sorted(probs) and all(0.5 <= p <= 1 for p in probs)  # two classes: the top one is >= 0.5
    assert call(cleaner.url + "api/items?order=size")[0] == 400
    status, jpeg = call(cleaner.url + "image?path=" + items[1]["path"])
    assert status == 200 and jpeg[:2] == b"\xff\xd8"


def test_clean_refuses_paths_that_leave_the_dataset(cleaner, data, tmp_path):
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(photo(data).read_bytes())
    os.symlink(outside, data / "train" / "ants" / "link.jpg")
    os.symlink(tmp_path, data / "train" / "escape")
    before = snapshot(tmp_path)
    bad = [
        "../outside.jpg",
        str(outside),
        "train/ants/../../../outside.jpg",
        "train/ants/link.jpg",
        "train/escape/outside.jpg",
        "./train/ants/x.jpg",
        "train//ants/x.jpg",
        ".fastkern-trash/x.jpg",
        "train\\ants\\x.jpg",
        "train/ants/missing.jpg",
    ]
    for rel in bad:
        for endpoint in ("api/plan", "api/apply"):
            status, ans = post(cleaner.url + endpoint, {"marks": {rel: "delete"}})
            assert status == 400 and ans["error"], (rel, ans)
        assert call(cleaner.url + "image?path=" + urllib.request.quote(rel))[0] == 400, rel
    good = "train/ants/" + photo(data, "train", "ants").name
    for cls in ("../evil", "bats", ".fastkern-trash", "", None, 3):
        status, ans = post(cleaner.url + "api/apply", {"marks": {good: cls}})
        assert status == 400 and "not 'keep', 'delete' or a class" in ans["error"], cls
    for body in ([], {"marks": ["x"]}, {"nomarks": {}}):
        assert post(cleaner.url + "api/apply", body)[0] == 400
    assert post(cleaner.url + "api/apply", {"marks": {good: "delete"}}, "text/plain")[0] == 415
    assert snapshot(tmp_path) == before  # nothing moved, in or out of the dataset


def test_clean_plan_apply_undo_round_trip_loses_nothing(cleaner, data):
    ants = sorted((data / "train" / "ants").glob("*.jpg"))
    bees = sorted((data / "train" / "bees").glob("*.jpg"))
    clash = data / "train" / "bees" / ants[1].name  # moving ants[1] to bees meets this name
    clash.write_bytes(b"a different file with the same name")
    before = snapshot(data)
    marks = {
        f"train/ants/{ants[0].name}": "delete",
        f"train/ants/{ants[1].name}": "bees",
        f"train/bees/{bees[0].name}": "keep",
        f"train/bees/{bees[1].name}": "bees",  # already there: nothing to do
    }
    status, ans = post(cleaner.url + "api/plan", {"marks": marks})
    assert status == 200 and snapshot(data) == before  # a dry run
    plan = {m["src"]: m for m in ans["moves"]}
    assert set(plan) == {f"train/ants/{ants[0].name}", f"train/ants/{ants[1].name}"}
    moved = plan[f"train/ants/{ants[1].name}"]["dst"]
    assert moved == f"train/bees/{ants[1].stem}-1.jpg"  # the clash got a suffix
    status, ans = post(cleaner.url + "api/apply", {"marks": marks})
    assert status == 200 and len(ans["moves"]) == 2
    after = snapshot(data)
    assert clash.read_bytes() == b"a different file with the same name"  # not overwritten
    assert after[moved] == before[f"train/ants/{ants[1].name}"]
    trashed = [k for k in after if k.startswith(".fastkern-trash/") and k.endswith(f"train/ants/{ants[0].name}")]
    assert len(trashed) == 1 and after[trashed[0]] == before[f"train/ants/{ants[0].name}"]
    assert sorted(after.values()) == sorted(before.values())  # nothing lost
    paths = [r["path"] for r in call(cleaner.url + "api/items")[1]["items"]]
    assert moved in paths and not any(p.startswith(".") for p in paths)  # the trash is not listed
    status, ans = post(cleaner.url + "api/undo", {})
    assert status == 200 and len(ans["moves"]) == 2
    assert {k: v for k, v in snapshot(data).items() if not k.startswith(".")} == before
    assert post(cleaner.url + "api/undo", {})[0] == 400  # nothing left to undo


def test_deleted_images_are_not_trained_on(data):
    from fastkern.data import ImageDataLoaders, get_image_files

    n = len(get_image_files(data))
    victim = photo(data, "train", "ants")
    clean.apply(data, {f"train/ants/{victim.name}": "delete"})
    assert len(get_image_files(data)) == n - 1 and victim.name not in {f.name for f in get_image_files(data)}
    dls = ImageDataLoaders.from_folder(data, valid="val", bs=4, num_workers=0)
    assert len(dls.train_ds) + len(dls.valid_ds) == n - 1


# -- clean: the command line, failures and interruptions --------------------------------------
def test_clean_command_line_dry_run_apply_undo(data, tmp_path, capsys):
    before = snapshot(data)
    victim = photo(data, "val", "bees")
    marks = tmp_path / "marks.json"
    marks.write_text(json.dumps({f"val/bees/{victim.name}": "ants"}))
    assert main(["clean", str(data), "--apply", str(marks), "--dry-run"]) == 0
    assert "would make 1 move(s)" in capsys.readouterr().out and snapshot(data) == before
    assert main(["clean", str(data), "--apply", str(marks)]) == 0
    assert (data / "val" / "ants" / victim.name).is_file() and not victim.exists()
    assert main(["clean", str(data), "--undo"]) == 0
    assert "moved 1 file(s) back" in capsys.readouterr().out
    assert {k: v for k, v in snapshot(data).items() if not k.startswith(".")} == before
    for argv, message in (
        (["--undo"], "nothing to undo"),
        (["--recover", "complete"], "nothing was interrupted"),
        ([], "needs --model"),
        (["--dry-run"], "--dry-run goes with --apply"),
        (["--apply", str(tmp_path / "none.json")], "No such file"),
    ):
        assert main(["clean", str(data), *argv]) == 2
        assert message in capsys.readouterr().err, argv
    marks.write_text("{not json")
    assert main(["clean", str(data), "--apply", str(marks)]) == 2
    assert "is not JSON" in capsys.readouterr().err
    assert main(["clean", str(tmp_path / "nodata"), "--undo"]) == 2


def test_a_failing_move_rolls_the_others_back(data, monkeypatch):
    before = snapshot(data)
    marks = {f"train/ants/{f.name}": "bees" for f in sorted((data / "train" / "ants").glob("*.jpg"))[:4]}
    real, calls = os.rename, []

    def flaky(a, b):
        calls.append(a)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(a, b)

    monkeypatch.setattr(clean.os, "rename", flaky)
    with pytest.raises(clean.CleanError, match="rolled back.*No space left"):
        clean.apply(data, marks)
    assert {k: v for k, v in snapshot(data).items() if not k.startswith(".")} == before
    assert clean.pending(data) is None


KILL_ON_THIRD_MOVE = """
import os, signal, sys, json
from fastkern.apps import clean
real, n = os.rename, [0]
def rename(a, b):
    n[0] += 1
    if n[0] == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    real(a, b)
clean.os.rename = rename
clean.apply(sys.argv[1], json.loads(sys.argv[2]))
"""


@pytest.mark.parametrize("how", ["complete", "rollback"])
def test_an_interrupted_apply_is_completed_or_rolled_back(data, how, capsys):
    before = snapshot(data)
    ants = sorted((data / "train" / "ants").glob("*.jpg"))
    marks = {f"train/ants/{f.name}": "bees" for f in ants[:3]} | {f"train/ants/{ants[3].name}": "delete"}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run([sys.executable, "-c", KILL_ON_THIRD_MOVE, str(data), json.dumps(marks)], env=env)
    assert p.returncode == -signal.SIGKILL
    moved = [f for f in ants[:3] if not f.exists()]
    assert len(moved) == 2  # killed mid-way: two of the four moves made
    assert sorted(snapshot(data).values()) == sorted(before.values())  # nothing lost even now
    with pytest.raises(clean.CleanError, match="interrupted"):
        clean.apply(data, {})
    assert main(["clean", str(data), "--undo"]) == 2 and "--recover" in capsys.readouterr().err
    assert main(["clean", str(data), "--recover", how]) == 0
    now = snapshot(data)
    assert sorted(now.values()) == sorted(before.values()) and clean.pending(data) is None
    if how == "rollback":
        assert {k: v for k, v in now.items() if not k.startswith(".")} == before
    else:
        assert all((data / "train" / "bees" / f.name).exists() for f in ants[:3]) and not ants[3].exists()
        assert main(["clean", str(data), "--undo"]) == 0  # a completed apply undoes as any other
        assert {k: v for k, v in snapshot(data).items() if not k.startswith(".")} == before


def test_a_tampered_journal_is_refused(data):
    victim = photo(data, "train", "ants")
    clean.apply(data, {f"train/ants/{victim.name}": "delete"})
    (journal,) = (data / ".fastkern-trash" / "journal").glob("*.json")
    j = json.loads(journal.read_text())
    j["moves"][0]["src"] = "../../etc/passwd"
    journal.write_text(json.dumps(j))
    with pytest.raises(clean.CleanError, match="malformed"):
        clean.undo(data)
    journal.write_text("[]")
    with pytest.raises(clean.CleanError, match="malformed"):
        clean.undo(data)
