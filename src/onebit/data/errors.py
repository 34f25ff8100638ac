"""Errors raised by ``onebit.data`` (torch-free)."""
from __future__ import annotations

from onebit.errors import OnebitError


class DatasetNotFoundError(OnebitError, FileNotFoundError):
    """A dataset file is missing and could not be downloaded.

    The message names every file that was looked for, the directories searched, and where to
    put the file (the shared layout ``<root>/<dataset>/<file>``).
    """


class ChecksumError(OnebitError, ValueError):
    """A dataset file exists but its checksum matches none of the known values.

    ``path``, ``expected`` (tuple of accepted hex digests) and ``actual`` are kept as attributes.
    """

    def __init__(self, path, expected, actual, detail: str = ""):
        self.path = str(path)
        self.expected = tuple(expected)
        self.actual = actual
        msg = (
            f"checksum mismatch for {self.path}: expected MD5 "
            f"{' or '.join(self.expected)}, got {actual}"
        )
        if detail:
            msg += f" ({detail})"
        msg += "; the file is corrupt or not the expected release: delete it and fetch it again"
        super().__init__(msg)


class DatasetFormatError(OnebitError, ValueError):
    """A dataset file passed its checksum (or had none) but its content is not what the reader
    expects (wrong IDX header, wrong image count, unknown class folder, ...)."""
