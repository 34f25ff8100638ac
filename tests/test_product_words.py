"""The product speaks of itself: no product file (sources, docs, README, benchmarks and their
records, tests, scripts) labels a round of work or names an issue number, and no file name
carries such a tag. An inference ``Session`` is of course fine; so are ``--rounds`` of a
benchmark."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("src", "docs", "benchmarks", "tests", "scripts", "examples", "include", ".ci",
           "README.md", "CMakeLists.txt", "pyproject.toml")
SKIP_DIRS = {".git", ".venv", ".peers-venv", "build", "runs", "__pycache__", ".pytest_cache"}

# Built from pieces so that this file does not match its own patterns.
_WORK = "|".join(["sess" + "ion", "rou" + "nd", "spr" + "int", "mile" + "stone"])
TEXT_PATTERNS = (
    ("label of a round of work", re.compile(r"\b(?:" + _WORK + r")[ _-]?\d+\b", re.I)),
    ("issue number", re.compile(r"\b" + "iss" + r"ues?[ _-]?#?\d+", re.I)),
    ("remark about the machine the project was made on",
     re.compile(r"\b(?:" + "un" + "tested|" + "develop" + r"ment machine)\b", re.I)),
)
NAME_PATTERN = re.compile(r"(?:^|[_.-])(?:s|r|" + _WORK + "|" + "iss" + r"ue)[_-]?\d+(?=$|[_.-])", re.I)


def product_files(root: Path) -> list[Path]:
    """Files under the product folders of ``root``: git's list (tracked and not ignored) when
    ``root`` is a git checkout, else every file but the usual build and scratch folders."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             cwd=root, capture_output=True, check=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            names += [os.path.relpath(os.path.join(dirpath, f), root) for f in filenames]
    return [root / n for n in names
            if n.split("/", 1)[0] in PRODUCT and (root / n).is_file()]


def findings(root: Path) -> list[str]:
    """``path:line: what`` for every tag found in the text or the name of a product file."""
    found = []
    for path in product_files(root):
        rel = path.relative_to(root).as_posix()
        for part in rel.split("/"):
            if NAME_PATTERN.search(Path(part).stem if "." in part else part):
                found.append(f"{rel}: file name {part!r} carries a tag")
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (images)
        for lineno, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            for what, pattern in TEXT_PATTERNS:
                m = pattern.search(line)
                if m:
                    found.append(f"{rel}:{lineno}: {what}: {m.group(0)!r}")
    return found


def test_product_files_carry_no_tags_of_how_they_were_made():
    assert findings(REPO) == []


def test_product_words_check_finds_planted_tags(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "docs" / "img").mkdir(parents=True)
    (tmp_path / "runs").mkdir()
    (tmp_path / "src" / "clean.py").write_text("session = Session(model)  # rounds=3, round-robin\n")
    (tmp_path / "src" / "kernel.cpp").write_text(
        "// fast path\n// measured in " + "rou" + "nd 3\n// see " + "iss" + "ue #12\n")
    (tmp_path / "docs" / "notes.md").write_text("Sess" + "ion-2 figures; " + "UN" + "TESTED here\n")
    (tmp_path / "docs" / "img" / ("pareto_" + "s3.png")).write_bytes(b"\x89PNG\0\0")
    (tmp_path / "runs" / ("scratch_" + "s2.json")).write_text("[]")  # not a product folder
    found = findings(tmp_path)
    assert any(f.startswith("src/kernel.cpp:2:") for f in found)
    assert any(f.startswith("src/kernel.cpp:3:") and "issue number" in f for f in found)
    assert sum(f.startswith("docs/notes.md:1:") for f in found) == 2
    assert any(f.startswith("docs/img/pareto_") and "file name" in f for f in found)
    assert not any(f.startswith(("src/clean.py", "runs/")) for f in found)
    assert len(found) == 5
