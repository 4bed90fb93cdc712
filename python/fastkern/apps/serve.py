"""``fastkern serve MODEL``: an exported image classifier behind a local web page and a JSON API.

GET  /          the page: upload or drop a photo, see it, its class and the top-k probabilities
POST /predict   an image (multipart/form-data field 'file', or the raw bytes) ->
                {"class", "index", "probabilities": {class: p}, "top": [{"class", "probability"}]}
GET  /health    {"status": "ok", "classes", "max_bytes", "max_pixels"}

with make_server("model.safetensors", port=0) as server:  # serves in a thread in the block
    ...  # requests to server.url
"""

import io
import threading
from pathlib import Path

from .web import MAX_BYTES, MAX_PIXELS, AppServer, html_response, json_response, open_image, page


def load_classifier(path, trusted=()):
    """(Learner, class names) of an export whose model takes images: its item transforms open
    them, and it has a vocab. Anything else is a ValueError saying what the file is instead."""
    from ..data.transforms import OpenImage, Pipeline
    from ..learner import load_learner

    if not Path(path).is_file():
        raise FileNotFoundError(f"no model file {path} (write one with learn.export or fastkern train --export)")
    learn = load_learner(path, trusted=trusted)
    item_tfms, _, vocab = learn._item_pipeline()
    tfms = Pipeline(item_tfms).tfms if item_tfms is not None else []
    if not tfms or not isinstance(tfms[0], OpenImage):
        raise ValueError(f"{path} does not take images: its item transforms do not start by opening an image")
    if not vocab:
        raise ValueError(f"{path} has no vocab (class names): export a classifier trained on labelled images")
    return learn, [str(v) for v in vocab]


class Predictor:
    """Thread-safe predictions of one exported classifier on images (paths, files, PIL images)."""

    def __init__(self, model, top_k=5, trusted=()):
        self.learn, self.classes = load_classifier(model, trusted)
        self.top_k = top_k
        self._lock = threading.Lock()  # the model (its mode switch, its buffers) is shared by the request threads

    def __call__(self, img):
        with self._lock:
            _, idx, probs = self.learn.predict(img)
        probs, i = [float(p) for p in probs.tolist()], int(idx.item())
        order = sorted(range(len(probs)), key=lambda k: -probs[k])[: self.top_k]
        return {
            "class": self.classes[i],
            "index": i,
            "probabilities": dict(zip(self.classes, probs)),
            "top": [{"class": self.classes[k], "probability": probs[k]} for k in order],
        }


def make_server(
    model, host="127.0.0.1", port=8000, top_k=5, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, quiet=False, trusted=()
):
    predictor = Predictor(model, top_k, trusted)
    name = Path(model).name
    html = page(f"fastkern: {name}", "classes: " + ", ".join(predictor.classes), _BODY, _SCRIPT)
    health = {"status": "ok", "model": name, "classes": predictor.classes, "max_bytes": max_bytes}
    health["max_pixels"] = max_pixels

    def predict(req):
        data = req.upload(max_bytes)
        open_image(data, max_pixels)  # refuses what is not a decodable image within the limits
        # The model opens the bytes itself, as it opens a file: the same decoding (JPEG draft
        # scaling included) gives the same answer as learn.predict on that file.
        return json_response(predictor(io.BytesIO(data)))

    routes = {
        ("GET", "/"): lambda req: html_response(html),
        ("GET", "/health"): lambda req: json_response(health),
        ("POST", "/predict"): predict,
    }
    return AppServer(routes, host, port, quiet)


_BODY = """
<style>
#drop { border: 2px dashed #89a; border-radius: 8px; padding: 2em; text-align: center; background: #fff; }
#drop.over { background: #e8f0ff; border-color: #36c; }
#result { display: flex; gap: 2em; margin-top: 1.5em; flex-wrap: wrap; }
#preview { max-width: 360px; max-height: 360px; border-radius: 6px; display: none; }
#label { font-size: 2em; margin: 0 0 0.5em; }
.bar { display: flex; align-items: center; gap: 0.6em; margin: 0.3em 0; }
.bar .name { width: 8em; text-align: right; }
.bar .track { width: 260px; background: #dde; border-radius: 4px; height: 1.1em; }
.bar .fill { background: #36c; height: 100%; border-radius: 4px; }
</style>
<div id="drop">Drop a photo here, or <input id="file" type="file" accept="image/*"></div>
<div id="result">
  <img id="preview" alt="the uploaded photo">
  <div><h2 id="label"></h2><div id="bars"></div><p id="error" class="error"></p></div>
</div>
"""

_SCRIPT = """
let maxBytes = null;
fetch('health').then((r) => r.json()).then((h) => { maxBytes = h.max_bytes; }).catch(() => {});

function show(state, label, error) {
  document.body.dataset.state = state;
  $('label').textContent = label;
  $('error').textContent = error || '';
}

async function predict(file) {
  $('bars').replaceChildren();
  if (!file) return;
  if (maxBytes !== null && file.size > maxBytes) {
    return show('error', '', `The file has ${file.size} bytes; the limit is ${maxBytes}.`);
  }
  const preview = $('preview');
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.style.display = 'block';
  show('busy', 'predicting\\u2026');
  const form = new FormData();
  form.append('file', file, file.name);
  let res = null, ans;
  try {
    res = await fetch('predict', { method: 'POST', body: form });
    ans = await res.json();
  } catch (e) {
    ans = { error: 'No answer from the server: ' + e };
  }
  if (!res || !res.ok) return show('error', '', ans.error || `error ${res.status}`);
  show('done', ans.class);
  for (const t of ans.top) {
    const pct = (100 * t.probability).toFixed(1) + '%';
    const fill = el('div', { className: 'fill' });
    fill.style.width = pct;
    $('bars').append(el('div', { className: 'bar' }, el('span', { className: 'name', textContent: t.class }),
                        el('div', { className: 'track' }, fill), el('span', { textContent: pct })));
  }
}

$('file').addEventListener('change', (e) => predict(e.target.files[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  predict(e.dataTransfer.files[0]);
});
document.body.dataset.state = 'ready';
"""
