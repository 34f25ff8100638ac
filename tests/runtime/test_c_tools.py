"""The plain CMake build (no Python): libonebit's C API, onebit-run, the C example and the loader
fuzzer, on small model files; results equal Session's bit for bit, bad input gives a clear error."""
import ctypes
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from onebit.runtime import Session, capabilities

ROOT = Path(__file__).resolve().parents[2]
CLASSES = [f"digit{i}" for i in range(10)]


def _tool(name):
    """A build tool from the venv (scripts/setup.sh installs cmake and ninja there) or the PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


@pytest.fixture(scope="module")
def build():
    cmake = _tool("cmake")
    if cmake is None or shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("cmake or a C compiler is missing: the plain CMake build cannot be tested")
    import nlohmann_json

    out = ROOT / "build-c-test"  # incremental between runs (ignored by git)
    ninja = _tool("ninja")
    gen = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"] if ninja else []
    r = subprocess.run([cmake, "-S", str(ROOT), "-B", str(out), *gen, "-DONEBIT_PYTHON=OFF",
                        f"-DONEBIT_NLOHMANN_JSON_INCLUDE={nlohmann_json.get_include()}"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run([cmake, "--build", str(out), "-j", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import torch

    import onebit.convert as cv
    from tiny_models import MNIST_SPEC, tiny_model

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("m") / "tiny.onebit"
    path.write_bytes(cv.to_bytes(tiny_model(3, clip=True), input_spec=dict(MNIST_SPEC, class_names=CLASSES)))
    return path


def _run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def test_example_classifies_one_raw_image(build, model, tmp_path):
    u = np.random.default_rng(0).integers(0, 256, (1, 28, 28, 1), dtype=np.uint8)
    (tmp_path / "img.raw").write_bytes(u.tobytes())
    r = _run(build / "classify", model, tmp_path / "img.raw")
    assert r.returncode == 0, r.stderr
    logits = Session(model).run(u)[0]
    best = int(logits.argmax())
    assert r.stdout.strip() == f"class {best} ({CLASSES[best]}) logit {logits[best]:.4f}"
    (tmp_path / "short.raw").write_bytes(u.tobytes()[:100])
    r = _run(build / "classify", model, tmp_path / "short.raw")
    assert r.returncode == 1 and "must hold exactly 784 bytes" in r.stderr


def test_onebit_run_equals_session_bit_for_bit(build, model, tmp_path):
    u = np.random.default_rng(1).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    (tmp_path / "in.raw").write_bytes(u.tobytes())
    sess = Session(model, isa="scalar", threads=1)
    want = sess.run(u)
    for isa in ("scalar", sess.isa, Session(model).isa):
        r = _run(build / "onebit-run", model, "--input", tmp_path / "in.raw", "--isa", isa, "--threads", 2,
                 "--logits", tmp_path / "out.bin", "--json")
        assert r.returncode == 0, r.stderr
        got = np.fromfile(tmp_path / "out.bin", np.float32).reshape(want.shape)
        assert np.array_equal(got, want)
        rec = json.loads(r.stdout)
        assert rec["isa"] == isa and rec["threads"] == 2 and rec["batch"] == 5
        assert rec["cpu_features"] == ",".join(capabilities()["features"])
        assert rec["activation_bytes"] == sess.activation_bytes(5)
        for b in range(5):
            order = sorted(range(10), key=lambda i: (-want[b, i], i))[:5]
            assert [t["class"] for t in rec["top5"][b]] == order
            assert [t["name"] for t in rec["top5"][b]] == [CLASSES[i] for i in order]
    r = _run(build / "onebit-run", model, "--input", tmp_path / "in.raw")
    assert r.returncode == 0 and r.stdout.count("image ") == 5 and CLASSES[int(want[0].argmax())] in r.stdout


def test_onebit_run_timing_table_and_json(build, model):
    r = _run(build / "onebit-run", model, "--repeats", 5, "--threads", 1)
    assert r.returncode == 0, r.stderr
    for key in ("cpu", "isa", "features", "threads", "median", "min", "activations", "peak RSS"):
        assert key in r.stdout
    rec = json.loads(_run(build / "onebit-run", model, "--repeats", 5, "--json").stdout)
    assert rec["repeats"] == 5 and 0 < rec["min_ms"] <= rec["median_ms"]
    assert [o["type"] for o in rec["ops"]] == [op.type for op in Session(model).model.ops]
    assert rec["kernel_sum_median_ms"] > 0 and rec["end_to_end_over_kernels"] >= 1.0
    assert rec["activation_bytes"] == Session(model).activation_bytes(1) > 0
    assert rec["peak_rss_bytes"] > 0


@pytest.mark.parametrize("args, code, match", [
    (["--threads", "0"], 2, "--threads must be an integer"),
    (["--isa", "mips"], 1, "--isa"),
    (["--repeats", "x"], 2, "--repeats"),
    (["--bogus"], 2, "unknown option"),
    (["--input", "/nonexistent/img.raw"], 1, "cannot open input file"),
])
def test_onebit_run_bad_arguments(build, model, args, code, match):
    r = _run(build / "onebit-run", model, *args)
    assert r.returncode == code and match in r.stderr
    assert r.stderr.startswith("onebit-run: ") and r.stdout == ""


def test_onebit_run_bad_files(build, model, tmp_path):
    data = model.read_bytes()
    cases = {"truncated.onebit": (data[:-10], "truncated|cover|outside"),
             "empty.onebit": (b"", "truncated"),
             "newer.onebit": (data.replace(b'"format_version":"1"', b'"format_version":"3"'), "format_version '3'"),
             "missing.onebit": (None, "cannot open model file")}
    for name, (content, match) in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        r = _run(build / "onebit-run", tmp_path / name)
        assert r.returncode == 1, name
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("onebit-run: ")
        import re
        assert re.search(match, r.stderr), (name, r.stderr)


def test_c_api_status_codes_and_messages(build, model):
    lib = ctypes.CDLL(str(build / "libonebit.so"))
    lib.onebit_last_error.restype = ctypes.c_char_p
    lib.onebit_isa.restype = ctypes.c_char_p
    lib.onebit_open_memory.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
    lib.onebit_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_size_t]
    lib.onebit_set_threads.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.onebit_set_isa.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.onebit_close.argtypes = [ctypes.c_void_p]
    lib.onebit_input_shape.argtypes = [ctypes.c_void_p] + [ctypes.POINTER(ctypes.c_int64)] * 3
    lib.onebit_isa.argtypes = [ctypes.c_void_p]
    data = model.read_bytes()
    h = ctypes.c_void_p()
    # malformed, truncated, newer version: FORMAT (3) and a message; no model returned
    n = struct.unpack("<Q", data[:8])[0]
    for bad, match in [(data[:7], b"truncated"), (data[:8 + n // 2], b"truncated"),
                       (data.replace(b'"format_version":"1"', b'"format_version":"9"'), b"format_version '9'")]:
        assert lib.onebit_open_memory(bad, len(bad), ctypes.byref(h)) == 3
        assert h.value is None and match in lib.onebit_last_error()
    assert lib.onebit_open_file(b"/nonexistent.onebit", ctypes.byref(h)) == 2  # IO
    assert lib.onebit_open_memory(data, len(data), ctypes.byref(h)) == 0 and h.value
    dims = [ctypes.c_int64() for _ in range(3)]
    assert lib.onebit_input_shape(h, *[ctypes.byref(d) for d in dims]) == 0
    assert [d.value for d in dims] == [28, 28, 1]
    u = np.random.default_rng(2).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    out = np.zeros((3, 10), np.float32)
    assert lib.onebit_run(h, u.ctypes.data, 3, out.ctypes.data, out.size) == 0
    assert np.array_equal(out, Session(data).run(u))
    assert lib.onebit_run(h, u.ctypes.data, 3, out.ctypes.data, 29) == 1  # output too small
    assert b"needs 30" in lib.onebit_last_error()
    assert lib.onebit_run(h, u.ctypes.data, 0, out.ctypes.data, out.size) == 1
    assert lib.onebit_set_threads(h, 0) == 1 and b"threads" in lib.onebit_last_error()
    assert lib.onebit_set_isa(h, b"neon-x") == 4  # UNSUPPORTED
    assert lib.onebit_set_isa(h, b"scalar") == 0 and lib.onebit_isa(h) == b"scalar"
    out2 = np.zeros_like(out)
    assert lib.onebit_run(h, u.ctypes.data, 3, out2.ctypes.data, out2.size) == 0
    assert np.array_equal(out, out2)
    lib.onebit_num_ops.argtypes = [ctypes.c_void_p]
    lib.onebit_num_ops.restype = ctypes.c_int64
    lib.onebit_op_type.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    lib.onebit_op_type.restype = ctypes.c_char_p
    lib.onebit_run_profiled.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
                                        ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
    nops = lib.onebit_num_ops(h)
    types = [op.type for op in Session(data).model.ops]
    assert nops == len(types) and [lib.onebit_op_type(h, i).decode() for i in range(nops)] == types
    assert lib.onebit_op_type(h, nops) is None
    ms = np.zeros(nops, np.float64)
    assert lib.onebit_run_profiled(h, u.ctypes.data, 3, out2.ctypes.data, out2.size, ms.ctypes.data, nops) == 0
    assert np.array_equal(out, out2) and (ms >= 0).all() and ms.sum() > 0
    assert lib.onebit_run_profiled(h, u.ctypes.data, 3, out2.ctypes.data, out2.size, ms.ctypes.data, nops - 1) == 1
    lib.onebit_close(h)


def test_c_api_set_isa_reads_the_weights_again(build, model, tmp_path):
    # a model opened from a file keeps only its prepared weights: set_isa reads the raw ones from
    # the file again, and refuses (IO, model unchanged and usable) when the file changed or is gone
    lib = ctypes.CDLL(str(build / "libonebit.so"))
    for f in ("onebit_last_error", "onebit_isa", "onebit_supported_isas"):
        getattr(lib, f).restype = ctypes.c_char_p
    lib.onebit_isa.argtypes = [ctypes.c_void_p]
    lib.onebit_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_size_t]
    lib.onebit_set_isa.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.onebit_close.argtypes = [ctypes.c_void_p]
    lib.onebit_open_memory.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
    isas = lib.onebit_supported_isas().split(b",")
    if len(isas) < 2:
        pytest.skip("one ISA only: set_isa cannot change it")
    path = tmp_path / "m.onebit"
    data = model.read_bytes()
    path.write_bytes(data)
    h = ctypes.c_void_p()
    assert lib.onebit_open_file(str(path).encode(), ctypes.byref(h)) == 0
    first = lib.onebit_isa(h)
    u = np.random.default_rng(5).integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
    expected = Session(data).run(u)

    def run():
        out = np.zeros((2, 10), np.float32)
        assert lib.onebit_run(h, u.ctypes.data, 2, out.ctypes.data, out.size) == 0, lib.onebit_last_error()
        return out

    assert np.array_equal(run(), expected)
    for isa in isas + [first]:  # every ISA, prepared from the file again each time
        assert lib.onebit_set_isa(h, isa) == 0, lib.onebit_last_error()
        assert lib.onebit_isa(h) == isa and np.array_equal(run(), expected)
    other = isas[0] if isas[0] != first else isas[1]
    # every tensor's first byte flipped: the file no longer holds the bytes that were validated
    n = struct.unpack("<Q", data[:8])[0]
    changed = bytearray(data)
    for name, e in json.loads(data[8:8 + n]).items():
        if name != "__metadata__" and e["data_offsets"][1] > e["data_offsets"][0]:
            changed[8 + n + e["data_offsets"][0]] ^= 1
    path.write_bytes(bytes(changed))
    assert lib.onebit_set_isa(h, other) == 2
    assert b"changed since it was opened" in lib.onebit_last_error()
    assert lib.onebit_isa(h) == first and np.array_equal(run(), expected)
    path.unlink()
    assert lib.onebit_set_isa(h, other) == 2 and b"cannot open model file" in lib.onebit_last_error()
    assert lib.onebit_isa(h) == first and np.array_equal(run(), expected)
    lib.onebit_close(h)
    # open_memory keeps its own copy: the caller's buffer may go, set_isa still works
    buf = ctypes.create_string_buffer(data, len(data))
    assert lib.onebit_open_memory(buf, len(data), ctypes.byref(h)) == 0
    ctypes.memset(buf, 0, len(data))
    del buf
    assert lib.onebit_set_isa(h, other) == 0 and np.array_equal(run(), expected)
    lib.onebit_close(h)


def test_fuzzer_small_run(build, tmp_path):
    # the seeded mutation fuzzer of the C++ loader (benchmarks/runtime/fuzz_loader.py runs 100,000
    # inputs under AddressSanitizer); here a few thousand inputs of an ordinary build
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks" / "runtime"))
    from seed_models import write_seeds

    seeds = write_seeds(tmp_path / "seeds")
    r = _run(build / "onebit-fuzz-loader", "--iterations", 3000, "--seed", 7, *seeds)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads(r.stdout)
    assert rec["failures"] == 0 and rec["rejected"] + rec["accepted"] == 3000 and rec["rejected"] > 0
