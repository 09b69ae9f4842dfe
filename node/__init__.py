"""The imperative shell: runtime, config, keys, RPC, MQTT bridge, mempool, block
builder, consensus driver, peer transport, metrics, CLI and the simulator shell.

May import everything below it: ``chain``, ``consensus``, ``storage``, ``acl``, and
``benchmarks`` (lazily, from the CLI).
"""
