"""Sessions run from several Python threads at once: same results as sequential runs, no deadlock
(the GIL is released during a run; each run takes its own buffers)."""
import threading

import numpy as np
import pytest

import onebit.convert as cv
from tiny_models import MNIST_SPEC, exact_model, RAW_SPEC, tiny_model
from onebit.runtime import Session


@pytest.fixture(scope="module")
def two_models():
    import torch

    torch.set_num_threads(1)
    return (cv.to_bytes(tiny_model(3, clip=True), input_spec=MNIST_SPEC),
            cv.to_bytes(exact_model(5, clip=True), input_spec=RAW_SPEC))


def _stress(sessions, inputs, threads=4, runs=200):
    expected = [[s.run(x) for x in inputs[i]] for i, s in enumerate(sessions)]
    errors, done = [], []

    def worker(t):
        rng = np.random.default_rng(t)
        try:
            for r in range(runs):
                i = int(rng.integers(len(sessions)))
                j = int(rng.integers(len(inputs[i])))
                out = sessions[i].run(inputs[i][j])
                if not np.array_equal(out, expected[i][j]):
                    errors.append(f"thread {t} run {r}: session {i} input {j} differs")
            done.append(t)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {t}: {type(e).__name__}: {e}")

    ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in ts), "a thread did not finish (deadlock?)"
    assert not errors, errors[:5]
    assert sorted(done) == list(range(threads))


def _inputs(sess, seed):
    rng = np.random.default_rng(seed)
    # batch sizes 1..3: runs of one session at different batch sizes overlap too
    return [rng.integers(0, 256, (1 + k % 3,) + sess.input_shape, dtype=np.uint8) for k in range(6)]


def test_two_sessions_four_threads_200_runs_each(two_models):
    sessions = [Session(two_models[0], threads=2), Session(two_models[1], threads=1)]
    _stress(sessions, [_inputs(s, i) for i, s in enumerate(sessions)])


def test_one_session_shared_by_four_threads(two_models):
    sess = Session(two_models[0], threads=1)
    _stress([sess], [_inputs(sess, 7)], runs=100)
