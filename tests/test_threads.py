"""The thread pool: thread-count settings, and ops called from several Python threads at once
(parallel regions release the GIL, so this must neither deadlock nor mix up results)."""

import subprocess
import sys
import threading

import numpy as np
import pytest

import fastkern as fk


def test_num_threads_setting():
    old = fk.get_num_threads()
    try:
        fk.set_num_threads(1)
        assert fk.get_num_threads() == 1
        for bad in (0, -3):  # as PyTorch: an error, not a silent clamp
            with pytest.raises(RuntimeError, match="positive integer"):
                fk.set_num_threads(bad)
        assert fk.get_num_threads() == 1
    finally:
        fk.set_num_threads(old)


def test_huge_thread_count_is_capped():
    # Far more threads than any machine has: capped, and later ops still work (in a child,
    # so the hundreds of parked workers do not slow the rest of the suite).
    code = (
        "import fastkern as fk; fk.set_num_threads(100000); n = fk.get_num_threads(); "
        "assert 1 <= n <= max(64, 4 * __import__('os').cpu_count()), n; "
        "x = fk.ones(1 << 20); assert (x * 2).sum().item() == 2 << 20"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_large_ops_from_two_python_threads():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((512, 1024)).astype(np.float32) for _ in range(2)]
    results, errors = {}, []

    def work(i):
        try:
            a = fk.tensor(arrays[i])
            for _ in range(5):
                out = ((a * 2 + 1).exp().sum(1) @ fk.ones(512, 3)).numpy()
            results[i] = out
        except Exception as e:  # surfaced below; a thread cannot fail the test itself
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and all(not t.is_alive() for t in threads)
    for i in range(2):
        want = np.exp(arrays[i].astype(np.float64) * 2 + 1).sum(1) @ np.ones((512, 3))
        np.testing.assert_allclose(results[i], want, rtol=1e-4)
