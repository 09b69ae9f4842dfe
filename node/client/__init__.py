"""The Python SDK: sign txs with a key and talk to a node's RPC, sync or async.

    from node.client import Client, TxSigner
    signer = TxSigner.from_key_file("orgs/org2/app.key", chain_id="c1")
    with Client("http://127.0.0.1:7700") as c:
        tx = signer.sign("audit.data_access", {...})
        receipt = c.submit([tx], wait=True)["results"][0]["receipt"]

``Client`` follows writes to the leader only in the sense that any node accepts them
(followers forward); on a 503 or a connection error it tries the next URL it was given,
which is how a caller rides through a leader change.

Where reads are for members (``rpc_auth = "members"``), sign every request with an
identity's key; over TLS, verify the node with the consortium's CA bundle::

    reader = RequestSigner.from_key_file("orgs/org2/app.key", chain_id="c1")
    with Client("https://127.0.0.1:7700", signer=reader, ca_cert="tls-cas.pem") as c:
        c.query("/v1/grants", grantee="org2")

Committed blocks as they commit: ``for block in c.stream(from_height=1): ...`` (Server-Sent
Events, resumed on the next URL when a node stops; ``block_stream``, ``sse``).

A package: ``signer`` (``TxSigner``), ``request_auth`` (``RequestSigner``), ``rpc`` (``Client``, ``AsyncClient``, ``RpcError``)
and ``block_stream`` (``StreamError``), re-exported here, which is the name users import;
``mqtt_publish`` (``AckedPublisher``, for apps that publish txs over MQTT) is imported from
its module. May import ``chain``
and ``node.runtime`` (key files); nothing else of ``node``.
"""

from node.client.block_stream import StreamError
from node.client.request_auth import RequestSigner
from node.client.rpc import TIMEOUT_S, AsyncClient, Client, RpcError
from node.client.signer import TxSigner

__all__ = [
    "TIMEOUT_S",
    "AsyncClient",
    "Client",
    "RequestSigner",
    "RpcError",
    "StreamError",
    "TxSigner",
]
