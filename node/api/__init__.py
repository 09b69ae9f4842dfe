"""The node's HTTP RPC: routes (``routes``, aiohttp), the OpenAPI document (``openapi``),
the Prometheus ``/metrics`` endpoint, and ``NodeService``, the Protocol the routes need of
a node. The MQTT bridge (apps publishing txs, the receipts topic) belongs here too, as
``node.api.mqtt``: another front door onto the same ``NodeService``.

May import ``chain``, ``storage``, ``acl``, ``node.runtime`` and ``node.pipeline``;
never ``node.app`` (the composition root hands a node to ``make_app``).
"""
