"""TLS certificate authorities for the peer transport: each organisation runs its own
ECDSA P-256 CA and issues its own nodes' certificates; every node trusts the members'
CAs (the consortium's *trust bundle*, built with the genesis) and nothing else (no
system CAs). No member ever holds another member's CA key.

An organisation's CA is name-constrained (RFC 5280 4.2.1.10, critical) to the DNS names
of that organisation's own node ids, so OpenSSL itself refuses a certificate one member's
CA issued for another member's node: a member can vouch only for its own nodes. A trust
bundle of several CAs must have every CA constrained so, with no node id permitted by two
of them (``check_trust_bundle``); a bundle of one CA (a test, or a consortium with one
TLS authority) needs no constraint.

A node certificate names the node in its subject common name and in exactly one DNS
subject alternative name (the node id); the peer transport takes the remote node's id
from that SAN after the TLS library has verified the chain. It also carries the node's
IP address, and is valid for both server and client authentication because every node
dials and accepts. P-256 rather than Ed25519: every TLS stack (and Python's ssl on any
OpenSSL 1.1.1+) accepts it.

Certificates follow RFC 5280 closely enough for OpenSSL's strict X.509 mode: critical
basic constraints and key usage, subject and authority key identifiers.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_DAYS_DEFAULT = 3650
CLOCK_SKEW_S = 300
"""Certificates start this long before issuance so that peers with slightly slow clocks
accept them at once."""


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key, both ready to write as PEM."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


class TrustBundleError(ValueError):
    """A trust bundle (PEM CA certificates) cannot be trusted as it is; says why."""


@dataclass(frozen=True, slots=True)
class TrustedCA:
    """One CA of a trust bundle: its subject and the node ids it may vouch for
    (empty: unconstrained, allowed only in a bundle of one)."""

    subject: str
    node_ids: tuple[str, ...]
    cert: x509.Certificate


def create_ca(
    common_name: str,
    *,
    now: datetime.datetime,
    days: int = CERT_DAYS_DEFAULT,
    node_ids: Sequence[str] = (),
    org_id: str | None = None,
) -> Issued:
    """A self-signed CA that may issue end-entity certificates only (path length 0);
    with ``node_ids``, only for those node ids (DNS name constraints); with ``org_id``,
    the subject names the organisation too."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org_id is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_id))
    name = x509.Name(attrs)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=CLOCK_SKEW_S))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    if node_ids:
        builder = builder.add_extension(
            x509.NameConstraints(
                permitted_subtrees=[x509.DNSName(n) for n in node_ids], excluded_subtrees=None
            ),
            critical=True,
        )
    return Issued(builder.sign(key, hashes.SHA256()), key)


def issue_node_cert(
    ca: Issued,
    node_id: str,
    *,
    ip: str | None,
    now: datetime.datetime,
    days: int = CERT_DAYS_DEFAULT,
) -> Issued:
    """A certificate for ``node_id`` (CN and the only DNS SAN) at ``ip`` (an IP address
    SAN; ``None`` for a node reached by a host name), for TLS server and client
    authentication, signed by ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=CLOCK_SKEW_S))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(node_id)]
                + ([x509.IPAddress(ipaddress.ip_address(ip))] if ip is not None else [])
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


def load_ca(cert_pem: bytes, key_pem: bytes) -> Issued:
    """A CA from its PEM files, to issue more node certificates later."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("a CA key must be an EC private key")
    return Issued(x509.load_pem_x509_certificate(cert_pem), key)


def check_trust_bundle(pem: bytes) -> tuple[TrustedCA, ...]:
    """The CAs of a trust bundle, checked: each a self-signed CA, subjects distinct, and
    when there are several, each name-constrained to DNS node ids with no node id
    permitted by two CAs (so one member's CA cannot vouch for another member's node)."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise TrustBundleError(f"not PEM certificates: {exc}") from None
    out: list[TrustedCA] = []
    owner: dict[str, str] = {}
    for cert in certs:
        subject = cert.subject.rfc4514_string()
        try:
            basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            raise TrustBundleError(f"{subject!r} is not a CA (no basic constraints)") from None
        if not basic.ca:
            raise TrustBundleError(f"{subject!r} is not a CA certificate")
        if cert.issuer != cert.subject:
            raise TrustBundleError(f"{subject!r} is not self-signed (issuer {cert.issuer})")
        try:
            cert.verify_directly_issued_by(cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise TrustBundleError(f"{subject!r}: bad self-signature: {exc!r}") from None
        if any(ca.subject == subject for ca in out):
            raise TrustBundleError(f"two CAs named {subject!r}")
        node_ids = permitted_node_ids(cert)
        for node_id in node_ids:
            if node_id in owner:
                raise TrustBundleError(
                    f"node id {node_id!r} is permitted by two CAs: {owner[node_id]!r} "
                    f"and {subject!r}"
                )
            owner[node_id] = subject
        out.append(TrustedCA(subject, node_ids, cert))
    if not out:
        raise TrustBundleError("no certificates")
    if len(out) > 1:
        for ca in out:
            if not ca.node_ids:
                raise TrustBundleError(
                    f"{ca.subject!r} is not name-constrained to its organisation's node ids; "
                    f"in a bundle of several CAs it could vouch for any member's node"
                )
    return tuple(out)


def permitted_node_ids(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names a CA certificate's critical name constraints permit (``()`` with no
    constraints); a constraint of any other shape is refused."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return ()
    subject = cert.subject.rfc4514_string()
    nc = ext.value
    if not ext.critical:
        raise TrustBundleError(f"{subject!r}: name constraints must be critical")
    if nc.excluded_subtrees or not nc.permitted_subtrees:
        raise TrustBundleError(f"{subject!r}: name constraints must only permit node ids")
    names: list[str] = []
    for general in nc.permitted_subtrees:
        if not isinstance(general, x509.DNSName):
            raise TrustBundleError(
                f"{subject!r}: name constraints must permit DNS node ids only, got {general!r}"
            )
        names.append(general.value)
    return tuple(names)
