"""Compiled hot-path kernels (numba) and their reference twins (hashlib, cryptography).

Part of ``chain``, with the same rules: may import the standard library, ``numpy``,
``numba`` (and its ``llvmlite``), ``cryptography`` and ``chain`` only. Nothing outside
this package contains a numba kernel.

Modules: ``backend`` (the ``GRANTCHAIN_KERNELS`` switch), ``reference`` (hashlib and
OpenSSL), ``numba_backend`` (the compiled twin: ``sha256``, ``ed25519`` on
``edwards25519``, ``field25519`` and ``scalar25519``, ``keytables``), ``selfcheck`` (start-up cross-check),
``cachekey`` (numba cache stamps), ``prefetch`` (a cache hint), ``hasharray`` and
``parallel`` (helpers that take the caller's executor). Only public data is ever given to numba: signing and private keys
stay in ``cryptography``.
"""
