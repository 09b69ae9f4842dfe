"""Runs a consensus core behind the ``consensus`` interface (``step``, ``tick``,
``has_ready``, ``ready``, ``advance``): the generic ``Driver`` that executes a Ready in
the order persist -> send -> apply -> advance (``PbftDriver`` adds PBFT's decisions and
state-transfer answers), the consensus thread that feeds it (``loop`` for Raft,
``pbft_loop`` for PBFT, chosen by the genesis; ``block_cut`` the mempool-to-block step
both share), and the LMDB storage each core persists
through (``raft_storage``, ``pbft_storage``). For PBFT also the block validation a
backup runs before it prepares (``pbft_validate``), the signature memory between that
validation and the commit (``verified``) and the replica's metrics (``pbft_metrics``).

May import ``chain``, ``consensus``, ``storage``, ``node.runtime``, ``node.transport``
and ``node.pipeline``.
"""
