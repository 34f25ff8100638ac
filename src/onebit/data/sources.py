"""Where dataset files live, how they are verified, and how missing ones are downloaded.

Search order for a file (first hit wins):

1. the ``root`` argument, else every directory in ``ONEBIT_DATA`` (an ``os.pathsep`` list);
2. the user cache directory (``ONEBIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/onebit``, else
   ``~/.cache/onebit``), which is also where downloads land;
3. system directories of a dataset (``/usr/share/datasets/fashion-mnist`` from Debian).

Inside each root a file is looked for in the dataset's sub-directories (shared layout
``mnist/``, ``cifar10/``, ``imagenette/``; torchvision's ``MNIST/raw/``; and the root itself
for the official archive names).

Every file is checked against known MD5 digests before it is decoded.  Digests are cached in
``<cache>/verified.json`` keyed by (path, size, mtime), so the 100 MB archives are hashed once.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from onebit.data.errors import ChecksumError, DatasetNotFoundError

__all__ = [
    "FileSpec", "cache_dir", "data_roots", "find_file", "locate", "verify", "download",
    "downloads_enabled", "md5_file",
]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileSpec:
    """One known dataset file.

    ``md5``: accepted MD5s of the file as stored.  ``raw_md5``: accepted MD5s of its
    gzip-decompressed content (lets a re-compressed copy with the same data pass, e.g.
    Debian's Fashion-MNIST).  ``subdirs``: directories searched inside a root ("" = the root).
    ``download_subdir``: where a download goes inside the cache directory.
    """

    filename: str
    md5: tuple = ()
    raw_md5: tuple = ()
    size: int | None = None
    urls: tuple = ()
    subdirs: tuple = ("",)
    download_subdir: str = ""
    system_dirs: tuple = ()

    @property
    def expected(self) -> tuple:
        return tuple(self.md5) + tuple(f"{d} (decompressed)" for d in self.raw_md5)


# ----------------------------------------------------------------------------- directories

def cache_dir() -> Path:
    """The user cache directory (decoded arrays, downloads, checksum cache)."""
    env = os.environ.get("ONEBIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "onebit"


def data_roots(root=None) -> list[Path]:
    """Roots searched for dataset files: ``root`` (or ``ONEBIT_DATA``) then the cache dir."""
    roots: list[Path] = []
    if root is not None:
        items = [root] if isinstance(root, (str, os.PathLike)) else list(root)
    else:
        items = [p for p in os.environ.get("ONEBIT_DATA", "").split(os.pathsep) if p]
    for item in items:
        roots.append(Path(item).expanduser())
    roots.append(cache_dir())
    seen, out = set(), []
    for r in roots:
        key = os.path.abspath(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def candidate_paths(spec: FileSpec, roots) -> list[Path]:
    paths = [Path(r) / sub / spec.filename for r in roots for sub in spec.subdirs]
    paths += [Path(d) / spec.filename for d in spec.system_dirs]
    return paths


def find_file(spec: FileSpec, roots) -> Path | None:
    """First existing candidate path of ``spec`` under ``roots`` (no verification)."""
    for p in candidate_paths(spec, roots):
        if p.is_file():
            return p
    return None


def downloads_enabled() -> bool:
    return os.environ.get("ONEBIT_NO_DOWNLOAD", "").strip().lower() not in {"1", "true", "yes", "on"}


def missing_message(specs, roots, extra: str = "") -> str:
    """Text of a DatasetNotFoundError: what is missing, where it was searched, where to put it."""
    specs = list(specs)
    names = ", ".join(s.filename for s in specs)
    searched = sorted({str(p.parent) for s in specs for p in candidate_paths(s, roots)})
    first = specs[0]
    sub = first.subdirs[0] if first.subdirs else ""
    where = [str(Path(roots[0]) / sub)] if roots else []
    where.append(str(cache_dir() / first.download_subdir))
    what = ("dataset file not found: " if len(specs) == 1
            else "dataset files not found (any one of them is enough): ")
    msg = (f"{what}{names}. Searched: {', '.join(searched)}. "
           f"Put the file into {' or '.join(dict.fromkeys(where))} "
           "(or point ONEBIT_DATA / the root argument at a folder that holds it)")
    if extra:
        msg += f". {extra}"
    return msg


# ----------------------------------------------------------------------------- checksums

def md5_file(path, decompress: bool = False) -> str:
    """MD5 hex digest of a file, or of its gzip-decompressed content."""
    h = hashlib.md5()
    opener = gzip.open if decompress else open
    with opener(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


_lock = threading.Lock()


def _verified_db() -> Path:
    return cache_dir() / "verified.json"


def _read_db() -> dict:
    try:
        with open(_verified_db()) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # absent or corrupt: digests are simply recomputed


def _write_db(data: dict) -> None:
    path = _verified_db()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".verified.", suffix=".tmp")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is meant to be shared
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=0, sort_keys=True)
        os.replace(tmp, path)  # atomic: concurrent processes never see half a file
    except OSError:
        pass  # read-only cache: verification still works, it is just not remembered


def _db_key(path: Path) -> str:
    st = path.stat()
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


def _digest(path: Path, kind: str) -> str | None:
    """Cached digest ``kind`` ('md5' or 'raw_md5') of ``path``; None if it cannot be computed."""
    key = _db_key(path)
    with _lock:
        entry = _read_db().get(key, {})
        if kind in entry:
            return entry[kind]
    try:
        value = md5_file(path, decompress=(kind == "raw_md5"))
    except (OSError, EOFError, gzip.BadGzipFile, ValueError) as exc:
        if kind == "raw_md5":
            return None  # not a valid gzip stream: no decompressed digest exists
        raise DatasetNotFoundError(f"cannot read {path}: {exc}") from exc
    with _lock:
        db = _read_db()
        db.setdefault(key, {})[kind] = value
        _write_db(db)
    return value


def verify(path, spec: FileSpec) -> None:
    """Raise :class:`ChecksumError` unless ``path`` matches one of ``spec``'s digests."""
    path = Path(path)
    if not spec.md5 and not spec.raw_md5:
        return
    actual = _digest(path, "md5")
    if actual in spec.md5:
        return
    detail = ""
    if spec.raw_md5:
        raw = _digest(path, "raw_md5")
        if raw in spec.raw_md5:
            return
        detail = ("not a valid gzip file" if raw is None
                  else f"decompressed MD5 {raw}")
    raise ChecksumError(path, spec.expected, actual, detail)


# ----------------------------------------------------------------------------- download

def _open_url(url: str, timeout: float = 30.0):
    """Open ``url`` for reading (file://, http(s)://).  Tests monkeypatch this."""
    req = urllib.request.Request(url, headers={"User-Agent": "onebit-data/1"})
    return urllib.request.urlopen(req, timeout=timeout)


def download(spec: FileSpec, dest_dir=None) -> Path:
    """Download ``spec`` into ``dest_dir`` (default: its folder in the cache dir).

    Tries each URL in turn; streams to a temporary file in the destination folder, verifies the
    MD5, then renames atomically.  Raises :class:`ChecksumError` when the bytes do not verify
    (the temporary file is removed) and :class:`DatasetNotFoundError` when no URL is reachable.
    """
    from tqdm.auto import tqdm

    dest_dir = Path(dest_dir) if dest_dir is not None else cache_dir() / spec.download_subdir
    dest = dest_dir / spec.filename
    if not spec.urls:
        raise DatasetNotFoundError(f"{spec.filename} has no download URL")
    errors = []
    for url in spec.urls:
        try:
            resp = _open_url(url)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
            continue
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{spec.filename}.", suffix=".part")
        try:
            h = hashlib.md5()
            total = getattr(resp, "length", None) or spec.size
            with resp, os.fdopen(fd, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, desc=spec.filename, leave=False,
                disable=None,
            ) as bar:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
            actual = h.hexdigest()
            if spec.md5 and actual not in spec.md5:
                # A raw-digest match still counts (re-compressed copies of the same data).
                if not (spec.raw_md5 and _safe_raw_md5(tmp) in spec.raw_md5):
                    raise ChecksumError(url, spec.expected, actual, "downloaded file rejected")
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise DatasetNotFoundError(
        f"could not download {spec.filename} ({'; '.join(errors)}); "
        f"put the file into {dest_dir} by hand")


def _safe_raw_md5(path) -> str | None:
    try:
        return md5_file(path, decompress=True)
    except (OSError, EOFError, ValueError):
        return None


def locate(spec: FileSpec, roots, *, allow_download: bool = True) -> Path:
    """Find ``spec`` under ``roots`` (downloading it if allowed), verify it, return its path."""
    path = find_file(spec, roots)
    if path is None:
        if not (allow_download and spec.urls):
            raise DatasetNotFoundError(missing_message([spec], roots))
        if not downloads_enabled():
            raise DatasetNotFoundError(missing_message(
                [spec], roots, "Downloads are disabled (ONEBIT_NO_DOWNLOAD is set)"))
        path = download(spec)
    verify(path, spec)
    return path

