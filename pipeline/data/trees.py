"""Source trees: the files of a directory, ``.zip``, ``.tar`` or ``.tar.gz`` by POSIX path."""

from __future__ import annotations

import os
import posixpath
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.data.policy import IngestError


class Tree:
    """Files of a directory or archive, by POSIX path relative to its root."""

    files: list[str]
    dirs: set[str]

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def iter_read(self, names: list[str]) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, bytes)`` for ``names`` (in the cheapest order for the container)."""
        for n in names:
            yield n, self.read(n)

    def _finish(self, files: list[str]) -> None:
        self.files = sorted(files)
        leaves = {posixpath.dirname(f) for f in self.files} - {""}
        self.dirs = leaves | {d for leaf in leaves for d in _parents(leaf)}


def _parents(name: str) -> Iterator[str]:
    d = posixpath.dirname(name)
    while d:
        yield d
        d = posixpath.dirname(d)


class DirTree(Tree):
    def __init__(self, root: Path) -> None:
        self.root = root
        files, dirs = [], set()
        for top, subdirs, names in os.walk(root):
            rel = os.path.relpath(top, root).replace(os.sep, "/")
            prefix = "" if rel == "." else rel + "/"
            dirs.update(prefix + d for d in subdirs)
            files.extend(prefix + n for n in names)
        self._finish(files)
        self.dirs |= dirs

    def read(self, name: str) -> bytes:
        with open(os.path.join(self.root, name), "rb") as fh:
            return fh.read()


class ZipTree(Tree):
    def __init__(self, path: Path) -> None:
        self.zf = zipfile.ZipFile(path)
        self._finish([i.filename for i in self.zf.infolist() if not i.is_dir()])
        self.dirs |= {i.filename.rstrip("/") for i in self.zf.infolist() if i.is_dir()}

    def read(self, name: str) -> bytes:
        return self.zf.read(name)


class TarTree(Tree):
    def __init__(self, path: Path) -> None:
        self.tf = tarfile.open(path, "r:*")  # noqa: SIM115 - kept open while reading
        self.members = {m.name.removeprefix("./"): m for m in self.tf.getmembers()}
        self._finish([n for n, m in self.members.items() if m.isfile()])
        self.dirs |= {n.rstrip("/") for n, m in self.members.items() if m.isdir() and n not in ("", ".")}

    def read(self, name: str) -> bytes:
        fh = self.tf.extractfile(self.members[name])
        assert fh is not None
        return fh.read()

    def iter_read(self, names: list[str]) -> Iterator[tuple[str, bytes]]:
        # archive order: forward seeks only, so a .tar.gz is decompressed once
        wanted = set(names)
        for name in self.members:
            if name in wanted:
                yield name, self.read(name)


def open_tree(path: str | Path) -> Tree:
    """A :class:`Tree` over a directory, ``.zip``, ``.tar``, ``.tar.gz``/``.tgz``."""
    path = Path(path)
    if path.is_dir():
        return DirTree(path)
    if not path.exists():
        raise IngestError(f"data.path={str(path)!r}: no such file or directory")
    if zipfile.is_zipfile(path):
        return ZipTree(path)
    if tarfile.is_tarfile(path):
        return TarTree(path)
    raise IngestError(f"data.path={str(path)!r}: not a directory, .zip or .tar archive")
