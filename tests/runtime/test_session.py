"""Session: engine == integer simulation on every ISA, thread-count invariance, input validation,
and no torch import in the runtime."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import onebit.convert as cv
from onebit.convert.compare import engine_vs_simulation
from onebit.models import randomize_bn
from onebit.runtime import Session

from tiny_models import CIFAR_SPEC, MNIST_SPEC, RAW_SPEC, exact_model, tiny_model


@pytest.fixture(scope="module")
def tiny_files():
    torch.set_num_threads(1)
    files = {clip: cv.to_bytes(tiny_model(3, clip=clip), input_spec=MNIST_SPEC) for clip in (False, True)}
    files["exact"] = cv.to_bytes(exact_model(5, clip=True), input_spec=RAW_SPEC)  # int8 -> bitpack path
    return files


@pytest.mark.parametrize("clip", [False, True, "exact"], ids=["bits", "int8clip", "int8-bitpack"])
def test_session_equals_simulation_tiny(tiny_files, isa, clip):
    data = tiny_files[clip]
    sess = Session(data, isa=isa, threads=2)
    sim = cv.simulate(sess.model)
    u = np.random.default_rng(1).integers(0, 256, (5,) + sess.input_shape, dtype=np.uint8)
    diffs = engine_vs_simulation(sess, sim, u)
    assert set(diffs) == set(sess.model.values) - {"input"}


def test_session_thread_count_invariant(tiny_files):
    u = np.random.default_rng(2).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    outs = [Session(tiny_files[True], threads=t).run(u) for t in (1, 2, 3)]
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_session_float_nchw_input_equals_uint8(tiny_files):
    sess = Session(tiny_files[False])
    u = np.random.default_rng(3).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    x = ((u.transpose(0, 3, 1, 2).astype(np.float32) / 255) - 0.1307) / 0.3081
    assert np.array_equal(sess.run(u), sess.run(x.astype(np.float32)))
    assert np.array_equal(sess.run(u[0]), sess.run(u)[:1])  # one HWC image


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 1, 28, 28), np.uint8), r"\(N, 28, 28, 1\) NHWC"),
    (np.zeros((2, 28, 28, 3), np.uint8), r"\(N, 28, 28, 1\)"),
    (np.zeros((2, 28, 28, 1), np.int32), "dtype must be uint8"),
    (np.zeros((2, 28, 28, 1), np.float32), "normalized NCHW"),
    (np.zeros((28, 28), np.uint8), "shape"),
    (np.zeros((0, 28, 28, 1), np.uint8), "empty"),
    (np.full((1, 1, 28, 28), np.nan, np.float32), "NaN"),
    ([[1, 2]], "NumPy array"),
], ids=["nchw-u8", "channels", "int32", "float-nhwc", "2d", "empty", "nan", "list"])
def test_session_input_validation(tiny_files, bad, match):
    sess = Session(tiny_files[False])
    with pytest.raises(ValueError, match=match):
        sess.run(bad)


def test_session_rejects_unknown_isa_and_threads(tiny_files):
    with pytest.raises(ValueError, match="not available"):
        Session(tiny_files[False], isa="neon-x")
    with pytest.raises(ValueError, match="threads"):
        Session(tiny_files[False], threads=0)


def _zoo(name, seed, **kw):
    import onebit.models as om

    torch.manual_seed(seed)
    model = om.create(name, **kw)
    return randomize_bn(model, seed, input_shape=model.input_shape).eval()


@pytest.mark.parametrize("name, kw, spec, n", [
    ("mnist-small", {}, MNIST_SPEC, 4),
    ("cifar-binarynet", {}, CIFAR_SPEC, 2),
], ids=["mnist-small", "cifar-binarynet"])
def test_session_equals_simulation_zoo_random(isa, name, kw, spec, n):
    torch.set_num_threads(1)
    model = _zoo(name, 0, **kw)
    data = cv.to_bytes(model, input_spec=spec)
    sess = Session(data, isa=isa)
    sim = cv.simulate(sess.model)
    u = np.random.default_rng(0).integers(0, 256, (n,) + tuple(spec["shape"]), dtype=np.uint8)
    engine_vs_simulation(sess, sim, u)


def test_runtime_never_imports_torch(tmp_path, tiny_files):
    path = tmp_path / "m.onebit"
    path.write_bytes(tiny_files[True])
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any 'import torch' now raises ImportError
        import numpy as np
        import onebit.runtime
        s = onebit.runtime.Session({str(path)!r})
        out = s.run(np.zeros((2, 28, 28, 1), np.uint8))
        assert out.shape == (2, 10) and out.dtype == np.float32
        assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, ONEBIT_ISA=""))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


@pytest.mark.parametrize("name, stem, size", [
    ("birealnet18", "cifar", 32), ("quicknet-small", "cifar", 32), ("birealnet18", "imagenet", 64),
], ids=["birealnet18-cifar", "quicknet-small-cifar", "birealnet18-imagenet64"])
def test_session_equals_simulation_residual_int8(isa, name, stem, size):
    # BNN-Clip: every tensor between blocks is int8, so the whole network is integer-exact
    torch.set_num_threads(1)
    model = _zoo(name, 0, clip_block=True, stem=stem, width=0.25, input_size=size)
    data = cv.to_bytes(model, input_spec=dict(CIFAR_SPEC, shape=[size, size, 3]))
    sess = Session(data, isa=isa)
    types = {op.type for op in sess.model.ops}
    assert {"add", "bitpack", "conv2d_i8", "global_avgpool"} <= types
    u = np.random.default_rng(0).integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    engine_vs_simulation(sess, cv.simulate(sess.model), u)


@pytest.mark.parametrize("name", ["birealnet18", "quicknet-small"])
def test_session_float_shortcuts_equal_simulation_exactly(name):
    # float shortcuts: the simulation sums the float 1x1 convs, float pools and the head in the
    # engine's documented order, so every float32 value is bit-exact too (all ISAs: the zoo test)
    torch.set_num_threads(1)
    model = _zoo(name, 1, clip_block=False, stem="cifar", width=0.25)
    sess = Session(cv.to_bytes(model, input_spec=CIFAR_SPEC))
    assert {"conv1x1_f32", "add", "global_avgpool"} <= {op.type for op in sess.model.ops}
    u = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    diffs = engine_vs_simulation(sess, cv.simulate(sess.model), u)
    assert max(diffs.values()) == 0.0


def test_session_shared_buffers_give_the_same_logits():
    # liveness-based buffer sharing must not change any result (residual graphs reuse buffers)
    model = _zoo("birealnet18", 2, clip_block=True, stem="cifar", width=0.25)
    sess = Session(cv.to_bytes(model, input_spec=CIFAR_SPEC))
    u = np.random.default_rng(4).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    values = sess.run_values(u)  # a plan without sharing: every value in its own buffer
    unshared = sum(v.nbytes for k, v in values.items() if k != "input")
    assert sess.activation_bytes(2) < unshared / 2
    first = sess.run(u)
    assert np.array_equal(first, values[sess.model.output_name])
    assert np.array_equal(first, sess.run(u))  # buffers reused across runs
    assert np.array_equal(first[1:], sess.run(u[1:]))  # another batch size, another plan


def test_session_rejects_bad_files_with_clear_errors(tmp_path, tiny_files):
    from onebit import FormatError

    data = tiny_files[True]
    with pytest.raises(FormatError, match="truncated|outside|cover"):
        Session(data[:-7])
    with pytest.raises(FormatError, match="format_version '3' is not supported"):
        Session(data.replace(b'"format_version":"1"', b'"format_version":"3"'))
    (tmp_path / "bad.onebit").write_bytes(data[:50])
    with pytest.raises(FormatError, match="bad.onebit: .*truncated"):
        Session(tmp_path / "bad.onebit")
    with pytest.raises(FileNotFoundError, match="missing.onebit"):
        Session(tmp_path / "missing.onebit")


def test_session_profile_times_every_op_in_cpp(tiny_files):
    sess = Session(tiny_files[True], threads=1)
    u = np.zeros((2, 28, 28, 1), np.uint8)
    prof = sess.profile(u, repeats=3)
    assert [p["op"] for p in prof] == [op.name for op in sess.model.ops]
    assert [p["type"] for p in prof] == [op.type for op in sess.model.ops]
    assert [p["output"] for p in prof] == [sess.model.values[op.output].kind for op in sess.model.ops]
    assert all(p["median_ms"] >= 0 for p in prof) and sum(p["median_ms"] for p in prof) > 0


def test_session_from_a_path_needs_the_file_only_while_opening(tmp_path, tiny_files):
    # the loader releases the raw weights once checked and the executor reads each op's again
    # just before preparing it: afterwards the Session holds what it runs, the file may go
    for key, data in tiny_files.items():
        ref = Session(data)
        u = np.random.default_rng(8).integers(0, 256, (3,) + ref.input_shape, dtype=np.uint8)
        path = tmp_path / f"m{key}.onebit"
        path.write_bytes(data)
        sess = Session(path, threads=2)
        path.unlink()
        assert np.array_equal(sess.run(u), ref.run(u))
