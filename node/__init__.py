"""The imperative shell: the runtime around the pure cores, in rooms.

    runtime/            config, key files, metrics, GC policy           (imports no room)
    transport/          frames, wire codec, peer messages, mutual TLS   (runtime)
    pipeline/           admission, mempool, entries, speculation,
                        ledger, certificates                            (runtime, transport)
    consensus_driver/   the driver and loop that run a consensus core   (+ pipeline)
    api/                HTTP routes, OpenAPI, /metrics; MQTT's home     (runtime, pipeline)
    app.py              the composition root: ``Node`` and ``serve``    (every room above)
    client/             the SDK: ``Client``, ``AsyncClient``, ``TxSigner`` (runtime)
    cluster/            consortium files, local clusters, load          (runtime, transport, client)
    cli/                the ``grantchain`` commands                     (all of node, benchmarks)
    sim/                the deterministic simulator shell               (consensus_driver)

Only ``node.app`` wires rooms together; a room imports only the rooms listed beside it
(``tests/test_architecture.py`` enforces this, and that no module anywhere is part of an
import circle). ``node`` as a whole may import everything below it: ``chain``,
``consensus``, ``storage``, ``acl``, and ``benchmarks`` (lazily, from the CLI).
"""
