"""``fastkern clean DATA_DIR``: fastai's ImageClassifierCleaner as a local page, and the same
actions from the command line.

The dataset holds one folder per class (``DATA_DIR/<class>/`` or ``DATA_DIR/<split>/<class>/``).
Marks are ``{"train/ants/x.jpg": "keep" | "delete" | "<another class>"}``, paths relative to
DATA_DIR. Applying them is safe:

- every path is checked to name a file inside DATA_DIR (no ``..``, no absolute path, no hidden
  folder, no symlink leading out);
- a deletion moves the file to ``DATA_DIR/.fastkern-trash/<stamp>/<its path>``; a move goes to the
  sibling folder of the new class; a name that is taken gets a suffix (``x-1.jpg``): nothing is
  ever overwritten or unlinked;
- the whole list of moves is written to ``.fastkern-trash/journal/<stamp>.json`` before the first
  one, and the journal is updated after each. A failing move rolls the others back; a killed apply
  leaves its journal, and ``recover(root, "complete")`` or ``"rollback"`` finishes or reverses it
  (each file is found where it is, so the journal may lag the files by one move);
- ``undo(root)`` moves the files of the last apply back.

``.fastkern-trash`` is a hidden folder, so ``get_image_files`` (and so retraining) skips it.
"""

import io
import json
import math
import os
import threading
import time
from pathlib import Path

from ..data.vision import IMAGE_EXTENSIONS, get_image_files
from .web import MAX_PIXELS, AppServer, HTTPError, Response, html_response, json_response, open_image, page

TRASH = ".fastkern-trash"
_ACTIONS = ("keep", "delete")


class CleanError(ValueError):
    """Marks, paths or a journal that cannot be applied; nothing was changed by the failed step."""


# -- paths -----------------------------------------------------------------------------
def _inside(root, rel, trash=False):
    """The path ``rel`` (relative, '/'-separated) names under ``root``, refused unless it stays
    inside: no empty, '.', '..' or (unless ``trash`` allows the trash folder) hidden part, nothing
    absolute, and resolving symlinks must not lead out."""
    if not isinstance(rel, str) or not rel:
        raise CleanError(f"{rel!r} is not a relative path")
    parts = rel.split("/")
    hidden = [p for p in parts if p.startswith(".")]
    trash_ok = trash and parts[0] == TRASH and hidden == [TRASH]
    if "\\" in rel or "\0" in rel or "" in parts or (hidden and not trash_ok):
        raise CleanError(f"{rel!r} is not a plain path inside the dataset (no '..', hidden or empty parts)")
    path = root.joinpath(*parts)
    try:
        path.resolve().relative_to(root)
    except ValueError:
        raise CleanError(f"{rel!r} leads out of the dataset") from None
    return path


def _image(root, rel):
    """The image file ``rel`` names inside root (a class folder's file: at least 'class/name')."""
    path = _inside(root, rel)
    if not path.is_file() or path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise CleanError(f"{rel!r} is not an image file of the dataset")
    if "/" not in rel:
        raise CleanError(f"{rel!r} is not in a class folder")
    return path


def _rel(root, path):
    return path.relative_to(root).as_posix()


def scan(root):
    """{relative path: class} of the images in class folders under root (the trash skipped)."""
    root = Path(root).resolve()
    return {_rel(root, f): f.parent.name for f in get_image_files(root) if f.parent != root}


def _classes(labels):
    return sorted(set(labels))


# -- planning and the journal ----------------------------------------------------------
def plan(root, marks, stamp="STAMP"):
    """The moves that ``marks`` ask for, as [{"src", "dst", "action"}], checked and with free
    destination names; changes nothing."""
    root = Path(root).resolve()
    if not isinstance(marks, dict):
        raise CleanError('marks are a JSON object {"path": "keep" | "delete" | "<class>"}')
    classes = _classes(scan(root).values())
    moves, taken, seen = [], set(), set()
    for rel, action in sorted(marks.items()):
        src = _image(root, rel)
        if src.resolve() in seen:
            raise CleanError(f"{rel!r} names a file that another mark names too")
        seen.add(src.resolve())
        if action == "keep":
            continue
        parts = rel.split("/")
        if action == "delete":
            dst = f"{TRASH}/{stamp}/{rel}"
        elif isinstance(action, str) and action in classes:
            if action == parts[-2]:
                continue  # already there
            dst = "/".join(parts[:-2] + [action, parts[-1]])
        else:
            raise CleanError(f"{rel!r}: {action!r} is not 'keep', 'delete' or a class ({', '.join(classes)})")
        dst = _free(root, dst, taken)
        taken.add(dst)
        moves.append({"src": rel, "dst": dst, "action": "delete" if action == "delete" else "move"})
    return moves


def _free(root, rel, taken):
    """``rel``, or with -1, -2, ... before its suffix: the first name neither on disk nor planned."""
    stem, dot, ext = rel.rpartition(".")
    candidate, k = rel, 0
    while candidate in taken or os.path.lexists(root / candidate):
        k += 1
        candidate = f"{stem}-{k}{dot}{ext}" if dot and "/" not in ext else f"{rel}-{k}"
    return candidate


def _journal_dir(root):
    return root / TRASH / "journal"


def _write(path, obj):
    """Atomically: a synced temporary file renamed over the journal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read(root, path):
    """A journal, its moves checked as the page's paths are (a journal is a file anyone could edit)."""
    try:
        j = json.loads(path.read_text())
        moves = j.get("moves") if isinstance(j, dict) else None
        if j.get("state") not in ("applying", "applied", "undoing", "undone") or not isinstance(moves, list):
            raise ValueError("no state or no list of moves")
        for m in moves:
            if not (isinstance(m, dict) and isinstance(m.get("src"), str) and isinstance(m.get("dst"), str)):
                raise ValueError(f"a move is not {{src, dst}}: {m!r}")
            _inside(root, m["src"]), _inside(root, m["dst"], trash=True)
    except (OSError, ValueError, AttributeError) as e:
        raise CleanError(f"the journal {path} is unreadable or malformed: {e}") from None
    return j


def _journals(root):
    d = _journal_dir(root)
    return sorted(d.glob("*.json")) if d.is_dir() else []


def pending(root):
    """(path, journal) of an apply or undo that was interrupted, or None."""
    root = Path(root).resolve()
    for path in reversed(_journals(root)):
        j = _read(root, path)
        if j["state"] in ("applying", "undoing"):
            return path, j
    return None


def _no_pending(root):
    p = pending(root)
    if p is not None:
        raise CleanError(
            f"an earlier {'apply' if p[1]['state'] == 'applying' else 'undo'} was interrupted (journal {p[0].name}): "
            f"run `fastkern clean {root} --recover complete` or `--recover rollback` first"
        )


def _stamp(root):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    k, name = 0, stamp
    while (_journal_dir(root) / f"{name}.json").exists() or (root / TRASH / name).exists():
        k += 1
        name = f"{stamp}-{k}"
    return name


def _drive(root, jpath, journal, forward):
    """Moves every file of the journal to its destination (``forward``) or back to its source, in
    order (backwards in reverse), recording each step; returns notes on files found in neither place."""
    journal["state"] = "applying" if forward else "undoing"
    _write(jpath, journal)
    notes = []
    for m in journal["moves"] if forward else reversed(journal["moves"]):
        src, dst = _inside(root, m["src"]), _inside(root, m["dst"], trash=True)
        a, b = (src, dst) if forward else (dst, src)
        if os.path.lexists(a):
            if os.path.lexists(b):
                raise CleanError(f"both {_rel(root, a)} and {_rel(root, b)} exist: not overwriting; move one away")
            b.parent.mkdir(parents=True, exist_ok=True)
            os.rename(a, b)
        elif not os.path.lexists(b):
            notes.append(f"{m['src']} is neither there nor at {m['dst']}: skipped")
        m["done"] = forward
        _write(jpath, journal)
    journal["state"] = "applied" if forward else "undone"
    _write(jpath, journal)
    return notes


def apply(root, marks, dry_run=False):
    """Applies the marks (see the module's docstring); returns the moves, planned only with ``dry_run``."""
    root = Path(root).resolve()
    _no_pending(root)
    stamp = _stamp(root)
    moves = plan(root, marks, stamp)
    if dry_run or not moves:
        return moves
    jpath = _journal_dir(root) / f"{stamp}.json"
    journal = {"version": 1, "state": "applying", "moves": [dict(m, done=False) for m in moves]}
    try:
        _write(jpath, journal)  # before any move: a kill from here on is recoverable
    except OSError as e:
        raise CleanError(f"cannot write the journal {jpath} ({e}): nothing was moved") from e
    try:
        _drive(root, jpath, journal, forward=True)
    except Exception as e:
        try:
            _drive(root, jpath, journal, forward=False)
        except Exception as e2:
            raise CleanError(
                f"applying failed ({e}) and rolling back failed too ({e2}); nothing was deleted: "
                f"fix that, then run `fastkern clean {root} --recover rollback`"
            ) from e2
        raise CleanError(f"applying failed, every move was rolled back: {e}") from e
    return moves


def undo(root):
    """Moves the files of the last apply back; returns its moves."""
    root = Path(root).resolve()
    _no_pending(root)
    for path in reversed(_journals(root)):
        j = _read(root, path)
        if j["state"] == "applied":
            _drive(root, path, j, forward=False)
            return j["moves"]
    raise CleanError(f"nothing to undo in {root}")


def recover(root, how):
    """Finishes (``how='complete'``) or reverses (``'rollback'``) an interrupted apply or undo;
    returns (what was interrupted, its moves, notes)."""
    if how not in ("complete", "rollback"):
        raise CleanError(f"recover: {how!r} is not 'complete' or 'rollback'")
    root = Path(root).resolve()
    p = pending(root)
    if p is None:
        raise CleanError(f"nothing was interrupted in {root}")
    path, j = p
    was_apply = j["state"] == "applying"
    notes = _drive(root, path, j, forward=was_apply == (how == "complete"))
    return ("apply" if was_apply else "undo"), j["moves"], notes


# -- the page --------------------------------------------------------------------------
class Cleaner:
    """The images of a dataset with a model's opinion of each: rows for the page."""

    def __init__(self, root, model, trusted=()):
        from .serve import load_classifier

        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"no dataset folder {root}")
        self.learn, self.vocab = load_classifier(model, trusted)
        self._preds = {}  # relative path -> (probabilities or None, error); moves carry them along
        self.lock = threading.Lock()  # one scan or apply at a time

    def _predict(self, rel):
        try:
            probs = self.learn.predict(str(self.root / rel))[2].tolist()
            return probs, None
        except Exception as e:  # an unreadable file is listed (first: the likeliest to delete), not fatal
            return None, f"{type(e).__name__}: {e}"

    def rows(self, order="loss"):
        """[{path, split, label, pred, prob, loss, error}], highest loss first (``order='loss'``) or
        least confident first (``'confidence'``); images that do not decode come first either way."""
        if order not in ("loss", "confidence"):
            raise CleanError(f"order {order!r} is not 'loss' or 'confidence'")
        with self.lock:
            labels = scan(self.root)
            for rel in labels:
                if rel not in self._preds:
                    self._preds[rel] = self._predict(rel)
        rows = []
        for rel, label in labels.items():
            probs, error = self._preds[rel]
            row = {"path": rel, "split": rel.split("/")[0] if rel.count("/") >= 2 else "", "label": label}
            row.update(pred=None, prob=None, loss=None, error=error)
            if probs is not None:
                i = max(range(len(probs)), key=probs.__getitem__)
                row.update(pred=self.vocab[i], prob=probs[i])
                if label in self.vocab:
                    row["loss"] = -math.log(max(probs[self.vocab.index(label)], 1e-12))
            rows.append(row)
        if order == "loss":
            key = lambda r: (r["error"] is None, -(r["loss"] if r["loss"] is not None else math.inf))
        else:
            key = lambda r: (r["error"] is None, r["prob"] if r["prob"] is not None else -1.0)
        return sorted(rows, key=key)

    def apply(self, marks, dry_run=False):
        with self.lock:
            moves = apply(self.root, marks, dry_run)
            if not dry_run:
                self._carry(moves, "src", "dst")
        return moves

    def undo(self):
        with self.lock:
            moves = undo(self.root)
            self._carry(moves, "dst", "src")
        return moves

    def _carry(self, moves, a, b):
        for m in moves:
            if m[a] in self._preds:
                self._preds[m[b]] = self._preds.pop(m[a])

    def thumbnail(self, rel, size=224):
        from PIL import Image

        try:
            path = _image(self.root, rel)
        except CleanError as e:
            raise HTTPError(400, str(e)) from None
        img = open_image(path.read_bytes(), MAX_PIXELS)
        img.thumbnail((size, size), Image.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        return buf.getvalue()


def make_server(root, model, host="127.0.0.1", port=8000, order="loss", quiet=False, trusted=()):
    cleaner = Cleaner(root, model, trusted)
    html = page(f"fastkern clean: {cleaner.root.name}", str(cleaner.root), _BODY, _SCRIPT.replace("ORDER", order))

    def checked(f):
        """CleanError (bad marks or paths, an interrupted journal) as a 400 answer."""

        def route(req):
            try:
                return f(req)
            except CleanError as e:
                raise HTTPError(400, str(e)) from None

        return route

    def marks(req):
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("marks"), dict):
            raise HTTPError(400, 'send {"marks": {"path": "keep" | "delete" | "<class>"}}')
        return body["marks"]

    def items(req):
        rows = cleaner.rows(req.query.get("order", order))
        splits = sorted({r["split"] for r in rows})
        classes = _classes([r["label"] for r in rows])
        return json_response({"splits": splits, "classes": classes, "items": rows})

    def undo_(req):
        req.json()  # (only the page's JSON requests may change files)
        return json_response({"moves": cleaner.undo()})

    routes = {
        ("GET", "/"): lambda req: html_response(html),
        ("GET", "/health"): lambda req: json_response({"status": "ok", "root": str(cleaner.root)}),
        ("GET", "/api/items"): checked(items),
        ("GET", "/image"): lambda req: Response(cleaner.thumbnail(req.query.get("path", "")), "image/jpeg"),
        ("POST", "/api/plan"): checked(lambda req: json_response({"moves": cleaner.apply(marks(req), True)})),
        ("POST", "/api/apply"): checked(lambda req: json_response({"moves": cleaner.apply(marks(req))})),
        ("POST", "/api/undo"): checked(undo_),
    }
    return AppServer(routes, host, port, quiet)


_BODY = """
<style>
#bar { display: flex; gap: 1em; align-items: center; flex-wrap: wrap; margin-bottom: 1em; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 0.8em; }
.card { background: #fff; border-radius: 6px; padding: 0.5em; box-shadow: 0 1px 3px #0002; min-width: 0; }
.card img { width: 100%; height: 160px; object-fit: cover; border-radius: 4px; background: #eee; }
.card p { margin: 0.3em 0; font-size: 0.85em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.card.delete { outline: 3px solid #b00020; } .card.move { outline: 3px solid #36c; }
#review { background: #fff; padding: 0.5em 1em; border-radius: 6px; margin: 1em 0; display: none; }
</style>
<div id="bar">
  <label>Split <select id="split"></select></label>
  <label>Class <select id="cls"></select></label>
  <label>Order <select id="order"><option value="loss">highest loss first</option>
    <option value="confidence">least confident first</option></select></label>
  <button id="plan">Review marks</button> <button id="undo">Undo last apply</button>
  <span id="status" class="muted"></span>
</div>
<p id="error" class="error"></p>
<div id="review"><h3>These moves will be made</h3><ul id="moves"></ul>
  <button id="apply">Apply</button> <button id="cancel">Cancel</button></div>
<div id="grid"></div>
"""

_SCRIPT = """
let data = { splits: [], classes: [], items: [] };
let marks = {};
$('order').value = 'ORDER';

function setState(state, status, error) {
  document.body.dataset.state = state;
  $('status').textContent = status || '';
  $('error').textContent = error || '';
}

async function call(url, body) {
  const opts = body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  };
  let res, ans;
  try {
    res = await fetch(url, opts);
    ans = await res.json();
  } catch (e) {
    throw new Error('No answer from the server: ' + e);
  }
  if (!res.ok) throw new Error(ans.error || `error ${res.status}`);
  return ans;
}

function fill(select, values, all) {
  const old = select.value;
  select.replaceChildren();
  for (const v of [all, ...values]) {
    select.append(el('option', { value: v === all ? '*' : v, textContent: v === '' ? '(none)' : v }));
  }
  if ([...select.options].some((o) => o.value === old)) select.value = old;
}

function fmt(x) { return x === null ? '-' : x.toFixed(2); }

function render() {
  const split = $('split').value, cls = $('cls').value;
  const grid = $('grid');
  grid.replaceChildren();
  for (const it of data.items) {
    if ((split !== '*' && it.split !== split) || (cls !== '*' && it.label !== cls)) continue;
    const img = el('img', { loading: 'lazy', src: 'image?path=' + encodeURIComponent(it.path), alt: it.path });
    const says = it.error ? `${it.label}: ${it.error}`
      : `${it.label} \\u2192 ${it.pred} (${fmt(it.prob)}), loss ${fmt(it.loss)}`;
    const sel = el('select');
    sel.dataset.path = it.path;
    for (const v of ['keep', 'delete', ...data.classes.filter((c) => c !== it.label)]) {
      sel.append(el('option', { value: v, textContent: v === 'keep' || v === 'delete' ? v : 'move to ' + v }));
    }
    const card = el('div', { className: 'card' }, img, el('p', { textContent: says }),
                    el('p', { className: 'muted', textContent: it.path, title: it.path }), sel);
    sel.value = marks[it.path] || 'keep';
    const mark = () => {
      card.className = 'card ' + (sel.value === 'keep' ? '' : sel.value === 'delete' ? 'delete' : 'move');
    };
    sel.addEventListener('change', () => {
      if (sel.value === 'keep') delete marks[it.path]; else marks[it.path] = sel.value;
      mark();
    });
    mark();
    grid.append(card);
  }
}

async function load() {
  setState('busy', 'predicting\\u2026');
  try {
    data = await call('api/items?order=' + $('order').value);
  } catch (e) {
    return setState('error', '', e.message);
  }
  fill($('split'), data.splits, 'all');
  fill($('cls'), data.classes, 'all');
  render();
  setState('ready', `${data.items.length} images`);
}

function listMoves(moves) {
  $('moves').replaceChildren();
  for (const m of moves) {
    $('moves').append(el('li', { textContent: `${m.action}: ${m.src} \\u2192 ${m.dst}` }));
  }
}

$('plan').addEventListener('click', async () => {
  try {
    const ans = await call('api/plan', { marks });
    listMoves(ans.moves);
    $('review').style.display = 'block';
    $('apply').disabled = ans.moves.length === 0;
    setState('review', ans.moves.length ? `${ans.moves.length} move(s) to review` : 'nothing marked');
  } catch (e) { setState('error', '', e.message); }
});
$('cancel').addEventListener('click', () => { $('review').style.display = 'none'; setState('ready'); });
$('apply').addEventListener('click', async () => {
  $('review').style.display = 'none';
  try {
    const ans = await call('api/apply', { marks });
    marks = {};
    await load();
    setState('applied', `applied ${ans.moves.length} move(s) (Undo reverses them)`);
  } catch (e) { setState('error', '', e.message); }
});
$('undo').addEventListener('click', async () => {
  try {
    const ans = await call('api/undo', {});
    await load();
    setState('undone', `moved ${ans.moves.length} file(s) back`);
  } catch (e) { setState('error', '', e.message); }
});
$('split').addEventListener('change', render);
$('cls').addEventListener('change', render);
$('order').addEventListener('change', load);
load();
"""
