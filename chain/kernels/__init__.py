"""Compiled hot-path kernels (numba) and their reference twins (hashlib, cryptography).

Part of ``chain``, with the same rules: may import the standard library, ``numpy``,
``numba``, ``cryptography`` and ``chain`` only. Nothing outside this package contains a
numba kernel.
"""
