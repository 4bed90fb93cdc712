"""From model to app (fast.ai lesson 2), as local web pages served by the standard library:

- ``fastkern serve MODEL`` (serve.py): upload a photo, see the predicted class and the top-k
  probabilities; ``POST /predict`` answers JSON.
- ``fastkern clean DATA_DIR --model MODEL`` (clean.py): fastai's ImageClassifierCleaner, the images
  ordered by loss or confidence, each to keep, delete (into ``.fastkern-trash/``) or move to another
  class, applied through a journal that ``--undo`` and ``--recover`` read.

web.py holds what both share: the server, request parsing, size-checked image decoding, the page frame.
"""
