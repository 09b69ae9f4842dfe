"""The ``grantchain`` subcommands, one module each, loaded lazily by ``node.cli``.

Part of ``node``: may import everything below it, and ``benchmarks``.
"""
