"""The block pipeline, from an arriving tx to an applied block: admission (strict decode,
sender and signature checks), the bounded mempool, the block entry format, speculative
execution on the leader, the ledger that applies committed blocks to the store, the
header-signature certificates (by the validators in force at each height), when to
answer a peer's header signature with this node's own (``signature_answers``), and the
validator-set history receipts carry (``validator_proofs``).

May import ``chain``, ``storage``, ``acl``, ``node.runtime`` and ``node.transport`` (the
header-signature message); never ``node.consensus_driver``, ``node.api`` or ``node.app``.
"""
