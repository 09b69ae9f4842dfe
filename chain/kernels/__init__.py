"""Compiled hot-path kernels (numba) and their reference twins (hashlib, cryptography).

Part of ``chain``, with the same rules: may import the standard library, ``numpy``,
``numba`` (and its ``llvmlite``), ``cryptography`` and ``chain`` only. Nothing outside
this package contains a numba kernel.

Modules: ``backend`` (the ``GRANTCHAIN_KERNELS`` switch), ``reference`` (hashlib and
OpenSSL), ``numba_backend`` (the compiled twin: ``sha256``, ``ed25519`` on
``edwards25519``, ``field25519`` and ``scalar25519``, ``keytables``), ``selfcheck`` (start-up cross-check),
``cachekey`` (numba cache stamps), ``prefetch`` (a cache hint), ``hasharray`` and
``parallel`` (helpers that take the caller's executor), ``txrun`` (a tx index run sorted
and its filter bits set, the in-memory duplicate check), ``blockroots`` (a block's ids,
tx root and results root in one call), ``logextend`` (a block's new log tree nodes, every
level in one call) and ``txpack`` (a block's txs packed into the store's page values, and read back
end to end for ``verify``), all
freeing the GIL; ``pyobjects`` (a list of
``bytes`` read in place by a kernel), ``msgpack_canon`` (canonical msgpack checked a batch
at a time) and ``vectorwidth`` (the widest vectors the CPU has, per kernel). Only public data is ever given to numba: signing and private keys
stay in ``cryptography``.
"""
