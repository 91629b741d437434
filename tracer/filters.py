"""Which files are the program's own: the recorder traces only their code."""

from __future__ import annotations

import fnmatch
import os
import sys
import sysconfig
from collections.abc import Sequence

# Retrograde's own packages: never traced, wherever the program's root is.
_PACKAGE_DIRS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d)
    for d in ("tracer", "replay", "tui", "neural")
)


def _library_dirs() -> tuple[str, ...]:
    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            dirs.add(os.path.realpath(sysconfig.get_path(key)))
        except Exception:
            pass
    for p in sys.path:
        if p.endswith(("site-packages", "dist-packages")):
            dirs.add(os.path.realpath(p))
    dirs.add(os.path.realpath(sys.prefix))
    dirs.add(os.path.realpath(sys.base_prefix))
    return tuple(sorted(dirs))


class FileFilter:
    """Decides which files are the program's own: the root's tree, minus libraries, plus/minus globs."""

    def __init__(self, root: str, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self.root = os.path.realpath(root)
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.libraries = tuple(d for d in _library_dirs() if not self.root.startswith(d + os.sep))
        self.own = tuple(os.path.realpath(d) for d in _PACKAGE_DIRS)

    def __call__(self, filename: str) -> bool:
        if not filename or filename.startswith("<"):
            return False
        path = os.path.realpath(filename)
        if any(fnmatch.fnmatch(path, g) or fnmatch.fnmatch(filename, g) for g in self.exclude):
            return False
        if any(fnmatch.fnmatch(path, g) or fnmatch.fnmatch(filename, g) for g in self.include):
            return True
        if any(path.startswith(d + os.sep) for d in self.own):
            return False
        if not path.startswith(self.root + os.sep):
            return False
        return not any(path.startswith(d + os.sep) for d in self.libraries)
