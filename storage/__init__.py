"""Durable storage: the ``BlockStore`` protocol, its in-memory twin and the LMDB adapter.

May import the standard library, ``lmdb``, ``msgpack``, ``numpy`` and ``chain`` — never
``consensus``, ``acl`` or ``node``.
"""
