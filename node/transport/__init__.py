"""The peer transport: length-prefixed frames (``framer``), the msgpack wire codec
(``wire``), the peer messages (``messages``), mutual-TLS connections between validators
(``peer``, ``tls``) and the consortium CA (``tlsca``).

May import ``chain``, ``consensus`` (its message types travel on the wire) and
``node.runtime``; nothing else of ``node``.
"""
