"""Makes numba's on-disk kernel cache depend on every kernel source file.

Why: numba stamps a cached function with a hash of *its own* source file only. The
verifier's entry point lives in ``ed25519.py`` but its arithmetic in ``field25519.py``
and ``edwards25519.py``; after an upgrade that changed only the arithmetic, numba would
keep loading the old machine code, and a node could disagree with OpenSSL while its
sources say otherwise. Here the stamp of every function defined in ``chain/kernels`` is
one digest of all the package's sources, so any edit recompiles everything.

Each kernel module imports this module before defining a cached function. It extends
numba's list of cache locators (an internal of ``numba.core.caching``); if a numba
version lacks it, ``installed()`` is False and the tests fail loudly rather than let a
stale cache go unnoticed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from numba.core import caching

KERNELS_DIR = Path(__file__).resolve().parent


def sources_digest() -> bytes:
    h = hashlib.sha256()
    for path in sorted(KERNELS_DIR.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.digest()


DIGEST = sources_digest()


def _in_kernels(py_file: str) -> bool:
    try:
        return Path(py_file).resolve().parent == KERNELS_DIR
    except OSError:
        return False


def _locator(base: Any) -> Any:
    class KernelsLocator(base):
        def get_source_stamp(self) -> bytes:
            return DIGEST

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            if not _in_kernels(py_file):
                return None
            return super().from_function(py_func, py_file)

    KernelsLocator.__name__ = KernelsLocator.__qualname__ = f"Kernels{base.__name__}"
    return KernelsLocator


def _bases() -> list[Any]:
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
    found = [getattr(caching, n, None) or getattr(caching, "_" + n, None) for n in names]
    return [b for b in found if b is not None]


_LOCATORS = [_locator(b) for b in _bases()]
_IMPL: Any = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)


def install() -> None:
    if _IMPL is None:
        return
    classes = _IMPL._locator_classes
    if _LOCATORS and _LOCATORS[0] not in classes:
        classes[0:0] = _LOCATORS


def installed() -> bool:
    return (
        _IMPL is not None
        and len(_LOCATORS) == 3
        and all(c in _IMPL._locator_classes for c in _LOCATORS)
    )


install()
