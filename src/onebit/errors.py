"""Exceptions shared by every part of onebit (torch-free)."""


class OnebitError(Exception):
    """Base class of onebit's own errors."""


class FormatError(OnebitError, ValueError):
    """A model file (or its metadata) is malformed, truncated, or inconsistent with its graph."""
