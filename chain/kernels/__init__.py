"""Compiled hot-path kernels (numba) and their reference twins (hashlib, cryptography).

Part of ``chain``: the same purity rules apply. Nothing outside this package contains a
numba kernel.
"""
