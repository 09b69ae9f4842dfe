"""Runs a consensus core behind the ``consensus`` interface (``step``, ``tick``,
``has_ready``, ``ready``, ``advance``): the ``Driver`` that executes a ``Ready`` in the
order persist -> send -> apply -> advance, the ``ConsensusLoop`` thread that feeds it, and
the LMDB storage a core persists through (``raft_storage``).

The home of every core's node-side code: a PBFT core lives in ``consensus/pbft.py`` and
its storage adapter beside ``raft_storage`` here. May import ``chain``, ``consensus``,
``storage``, ``node.runtime``, ``node.transport`` and ``node.pipeline``.
"""
