"""``pip install onebit`` without the ``train`` extra: a fresh virtual environment (no system
site packages) gets the project's wheel and its runtime dependencies, no torch, and runs a model
file through ``Session`` (the same logits as this environment) and ``onebit bench``."""
import email
import importlib.util
import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tiny_models import MNIST_SPEC, tiny_model

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("scikit_build_core") is None or importlib.util.find_spec("nanobind") is None,
    reason="building the wheel needs scikit-build-core and nanobind (scripts/setup.sh installs them)")


def _pip(python, *args, timeout=180):
    return subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    # --no-build-isolation reuses the extension's build folder (build/<tag>): seconds, not a rebuild
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w",
                        str(out), str(REPO)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("onebit-*.whl")
    return whl


def _requires(whl: Path) -> list[str]:
    with zipfile.ZipFile(whl) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(name))
    return meta.get_all("Requires-Dist") or []


def test_wheel_requires_torch_only_in_the_train_extra(wheel):
    reqs = _requires(wheel)
    base = [r for r in reqs if "extra ==" not in r]
    assert base and not any(r.startswith(("torch", "pillow", "matplotlib")) for r in base), base
    train = [r.split(";")[0] for r in reqs if 'extra == "train"' in r]
    assert any(r.startswith("torch") for r in train), reqs


@pytest.fixture(scope="module")
def runtime_env(wheel, tmp_path_factory):
    root = tmp_path_factory.mktemp("venv") / "env"
    venv.create(root, with_pip=True, system_site_packages=False)
    py = root / "bin" / "python"
    r = _pip(py, "install", "-q", "--no-deps", str(wheel))
    assert r.returncode == 0, r.stderr[-2000:]
    base = [r.split(";")[0].replace(" ", "") for r in _requires(wheel) if "extra ==" not in r]
    r = _pip(py, "install", "-q", *base)
    if r.returncode != 0:
        pytest.skip(f"could not install the runtime dependencies {base} from a package index: "
                    f"{r.stderr.strip().splitlines()[-1:]}")
    return root


def test_fresh_runtime_env_runs_a_model_without_torch(runtime_env, tmp_path):
    import onebit.convert as cv
    from onebit.runtime import Session

    path = cv.export(tiny_model(0), tmp_path / "tiny.onebit", input_spec=MNIST_SPEC)
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    py = runtime_env / "bin" / "python"
    code = ("import importlib.util, sys\n"
            "import numpy as np\n"
            "from onebit.runtime import Session\n"
            "np.save(sys.argv[3], Session(sys.argv[1]).run(np.load(sys.argv[2])))\n"
            "assert importlib.util.find_spec('torch') is None, 'torch is installed'\n"
            "assert not any(m.split('.')[0] == 'torch' for m in sys.modules)\n")
    r = subprocess.run([str(py), "-c", code, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), Session(path).run(x))  # same logits, bit for bit

    onebit_cli = runtime_env / "bin" / "onebit"
    j = tmp_path / "bench.json"
    r = subprocess.run([str(onebit_cli), "bench", str(path), "--isa", "scalar", "--threads", "1", "--repeats", "2",
                        "--vs", "none", "--json", str(j)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [(rec["engine"], rec["isa"]) for rec in json.loads(j.read_text())] == [("onebit", "scalar")]
    r = subprocess.run([str(onebit_cli), "summary", str(path)], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    assert r.returncode == 0 and "bit-MACs" in r.stdout, r.stderr
    r = subprocess.run([str(onebit_cli), "train", "mnist-small", "--dataset", "mnist"], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode != 0 and r.stderr.strip() == ("Error: onebit train needs torch, which is not installed: "
                                                      "pip install 'onebit[train]'"), r.stderr
