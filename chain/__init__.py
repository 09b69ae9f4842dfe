"""grantchain's shared data model: canonical codec, transactions, blocks, hashes,
the RFC 9162 Merkle log and its proofs, signatures, and the numba kernels.

Pure: may import only the standard library, ``msgpack``, ``cryptography``, ``numpy``,
``numba`` and ``llvmlite`` (numba's code generator, for the kernels' intrinsics) — never ``consensus``, ``storage``, ``acl`` or ``node``, and never
asyncio, sockets, lmdb, the wall clock, global random or print.
"""
