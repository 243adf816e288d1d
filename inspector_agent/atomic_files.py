"""Files written whole or not at all: a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from inspector_agent.errors import InspectorError


def write_atomic(
    path: str | Path, write: Callable[[IO[Any]], object], *, text: bool, newline: str | None = None
) -> Path:
    """Call ``write(handle)`` on a temporary file in ``path``'s folder, then rename it to ``path``.

    Parent folders are created. On any failure the temporary file is removed and ``path`` keeps
    its previous content (or stays absent); the exception propagates.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        mode = "w" if text else "wb"
        encoding = "utf-8" if text else None
        with os.fdopen(fd, mode, encoding=encoding, newline=newline if text else None) as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_problem(path: str | Path) -> str | None:
    """Why ``path`` (a file or folder still to be written) cannot be created, or None.

    Checked before long work, so a run is not lost to an output path that was never usable:
    an existing parent that is a file, or a folder this user may not write in.
    """
    parent = Path(path).absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"no permission to write in {parent}"
    return None


class OutputPathError(InspectorError):
    """A file cannot be written where it was asked for (one line, exit code 2 in the CLI)."""


def check_output_file(path: str | Path, what: str) -> Path:
    """``path`` as the file name of a ``what`` (report, overlay, export) still to be written,
    checked before the work that makes it; a one-line :class:`OutputPathError` otherwise."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path}: is a folder; give the {what} a file name")
    problem = write_problem(path)
    if problem:
        raise OutputPathError(f"{path}: cannot write the {what}: {problem}")
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """``data`` to ``path``, whole or not at all."""
    return write_atomic(path, lambda handle: handle.write(data), text=False)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """UTF-8 ``text`` to ``path``, whole or not at all."""
    return write_atomic(path, lambda handle: handle.write(text), text=True)


def check_output_folder(path: str | Path, what: str) -> Path:
    """``path`` as the folder for ``what`` (plots, overlays, checkpoints) still to be written,
    checked before the work that fills it; a one-line :class:`OutputPathError` otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path}: is a file; the {what} need a folder")
    problem = write_problem(path / "_")
    if problem:
        raise OutputPathError(f"{path}: cannot write the {what}: {problem}")
    return path


@contextmanager
def replaced_folder(target: str | Path) -> Iterator[Path]:
    """A staging folder beside ``target`` to fill in the ``with`` block; when the block
    completes it replaces ``target`` whole. On any failure ``target`` is left as it was and the
    staging folder is removed."""
    target = Path(target)
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)  # left by a run that was killed
    try:
        yield staging
        staging.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
