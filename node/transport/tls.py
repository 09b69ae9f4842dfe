"""TLS settings for the peer transport: mutual authentication against the consortium's
trust bundle (every member organisation's TLS CA, ``node.transport.tlsca``).

Both directions require a certificate chaining to one of the members' CAs and nothing
else (no system trust store), TLS 1.3 only, OpenSSL's strict X.509 checks. The bundle is
checked before it is used (``check_trust_bundle``): with several CAs each is constrained
to its own organisation's node ids, so OpenSSL refuses a certificate a member issued for
another member's node. The client also checks that the server's certificate names the
node it meant to dial (hostname = node id); the server learns who dialled from the
client's verified certificate with ``peer_identity``. Identity never comes from message
payloads. A certificate that names IP addresses is good only at those addresses
(``check_peer_address``): the dialler checks the address it dialled, the acceptor the
address the connection comes from, so a node's key used from another host is refused.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Any

from node.runtime.keys import check_secret_file_mode
from node.transport.tlsca import TrustBundleError, check_trust_bundle


class PeerIdentityError(ValueError):
    """A verified certificate does not name exactly one node."""


def _context(protocol: int, ca_cert: Path, cert: Path, key: Path) -> ssl.SSLContext:
    check_secret_file_mode(key)
    try:
        check_trust_bundle(Path(ca_cert).read_bytes())
    except TrustBundleError as exc:
        raise TrustBundleError(f"{ca_cert}: trust bundle refused: {exc}") from None
    ctx = ssl.SSLContext(protocol)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_verify_locations(cafile=str(ca_cert))
    ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
    return ctx


def server_context(*, ca_cert: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """For accepting peers: a client certificate from a member's CA is required."""
    return _context(ssl.PROTOCOL_TLS_SERVER, ca_cert, cert, key)


def client_context(*, ca_cert: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """For dialling peers: presents our certificate, checks theirs and their node id."""
    ctx = _context(ssl.PROTOCOL_TLS_CLIENT, ca_cert, cert, key)
    ctx.check_hostname = True
    return ctx


def peer_identity(peercert: dict[str, Any] | None) -> str:
    """The node id a verified peer certificate names: its only DNS SAN."""
    if not peercert:
        raise PeerIdentityError("the peer presented no verified certificate")
    names = [value for kind, value in peercert.get("subjectAltName", ()) if kind == "DNS"]
    if len(names) != 1:
        raise PeerIdentityError(f"a node certificate names exactly one DNS SAN, got {names!r}")
    return str(names[0])


def check_peer_address(peercert: dict[str, Any] | None, host: str) -> None:
    """Raise ``PeerIdentityError`` if a verified certificate names IP addresses and
    ``host`` (the address dialled, or the one a connection comes from) is not one of
    them. A host name, or a certificate without IP addresses (nodes reached by name),
    is not checked here: the node id is."""
    try:
        address = _unmapped(ipaddress.ip_address(host))
    except ValueError:
        return
    named = [
        _unmapped(ipaddress.ip_address(str(value).strip()))
        for kind, value in (peercert or {}).get("subjectAltName", ())
        if kind == "IP Address"
    ]
    if named and address not in named:
        raise PeerIdentityError(
            f"the certificate is bound to {', '.join(map(str, named))}, "
            f"but the peer is at {address}"
        )


def _unmapped(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
