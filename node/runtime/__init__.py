"""What every part of a running node shares: its config file, key files, metrics and
the garbage-collector policy.

The bottom room of ``node``: may import ``chain`` and the standard library; no
room of ``node``.
"""
