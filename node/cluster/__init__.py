"""Operator tooling above the SDK: a consortium on disk (``consortium``: keys, TLS CA,
genesis, configs), local clusters of node processes (``local``), the audit story the
demo plays (``scenario``) and the load generator (``load``).

May import ``chain``, ``acl``, ``node.runtime``, ``node.transport`` (the TLS CA) and
``node.client``; never the node's internals (it talks to nodes over their RPC).
"""
