"""The runtime never imports torch: every module under onebit.runtime and onebit.bench, and the
CLI commands that run model files, work in a process where torch cannot be imported; the
commands that need the ``train`` extra say which extra to install (one line, non-zero exit)."""
import json
import pkgutil
import subprocess
import sys
import textwrap

import pytest

import onebit.bench
import onebit.runtime

from tiny_models import MNIST_SPEC, tiny_model

# Run before anything else in the child: importing torch, PIL or matplotlib fails there.
_BLOCK = textwrap.dedent("""
    import sys

    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "PIL", "matplotlib"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _Block())
""")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCK + textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=120)


def _modules(package) -> list[str]:
    return [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]


def test_runtime_and_bench_modules_import_without_torch():
    names = _modules(onebit.runtime) + _modules(onebit.bench) + ["onebit.cli", "onebit.data"]
    assert "onebit.runtime.session" in names and "onebit.bench.model" in names
    r = _run("""
        import importlib, sys
        for name in sys.argv[1:]:
            importlib.import_module(name)
        assert not any(m.split(".")[0] == "torch" for m in sys.modules), "torch was imported"
        print("ok")
    """, *names)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    import onebit.convert as cv

    p = tmp_path_factory.mktemp("torchfree") / "tiny.onebit"
    cv.export(tiny_model(0), p, input_spec=MNIST_SPEC)
    return p


def _cli(*args: str) -> subprocess.CompletedProcess:
    return _run("""
        import sys
        from onebit.cli import main
        main(sys.argv[1:], prog_name="onebit")
    """, *args)


def test_model_file_commands_run_without_torch(model_file, tmp_path):
    j = tmp_path / "b.json"
    r = _cli("bench", str(model_file), "--isa", "scalar", "--threads", "1", "--repeats", "2", "--vs", "none",
             "--json", str(j))
    assert r.returncode == 0, r.stderr
    assert [rec["engine"] for rec in json.loads(j.read_text())] == ["onebit"]
    r = _cli("summary", str(model_file))
    assert r.returncode == 0 and "bit-MACs" in r.stdout, r.stderr
    r = _cli("--help")
    assert r.returncode == 0 and "train" in r.stdout


def test_eval_runs_without_torch(model_file, tmp_path, datasets_root):
    j = tmp_path / "eval.json"
    r = _cli("eval", str(model_file), "--dataset", "mnist", "--limit", "64", "--quiet", "--json", str(j))
    assert r.returncode == 0, r.stderr
    rec = json.loads(j.read_text())
    assert rec["n"] == 64 and 0.0 <= rec["accuracy"] <= 1.0


@pytest.mark.parametrize("args, what", [
    (["train", "mnist-small", "--dataset", "mnist"], "onebit train"),
    (["summary", "mnist-small"], "onebit summary MODEL|CKPT"),
    (["export", "{model}", "-o", "x.onebit"], "onebit export"),
    (["eval", "{model}", "--dataset", "mnist", "--simulate"], "onebit eval --simulate"),
    (["verify", "{model}"], "onebit verify"),
    (["prune", "{model}", "-o", "p.pt"], "onebit prune"),
    (["demo", "--epochs", "1"], "onebit demo"),
])
def test_train_extra_commands_name_the_extra(model_file, args, what):
    r = _cli(*[a.format(model=model_file) for a in args])
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"Error: {what} needs ") and "pip install 'onebit[train]'" in lines[0]


def test_import_command_names_the_larq_extra(model_file, tmp_path):
    h5 = tmp_path / "m.h5"
    h5.write_bytes(b"not read: torch is missing first")
    r = _cli("import", str(h5), "-o", str(tmp_path / "x.onebit"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: onebit import needs ") and "pip install 'onebit[larq]'" in lines[0]
