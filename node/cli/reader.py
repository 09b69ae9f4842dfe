"""Who a reading command reads as, on a node with ``rpc_auth = "members"``: the options
every command that reads over the RPC takes, and the ``Client`` they make.

- ``--key FILE`` (or ``GRANTCHAIN_KEY``): an identity's key file; every request is signed
  with it (``node.client.RequestSigner``). The chain id is ``--chain-id`` (or
  ``GRANTCHAIN_CHAIN_ID``), else asked of the node (``/v1/status`` is open).
- ``--consortium DIR`` (or ``GRANTCHAIN_CONSORTIUM``): a consortium directory
  (``consortium.json``): its chain id, its CA bundle, and the key of ``--identity NAME``
  (default: the first admin identity it lists).
- ``--ca-cert FILE`` (or ``GRANTCHAIN_CA_CERT``): the consortium's CA bundle, to verify
  an ``https://`` node; a consortium directory gives its own.
- ``--tls-server-name NAME`` (or ``GRANTCHAIN_TLS_SERVER_NAME``): check the node's
  certificate against NAME (its node id) instead of the URL's host: for a node reached
  by a Service name or an address its certificate does not carry. Repeat it once per
  ``--url``, in order, where a command takes several.

Without any of them the client signs nothing, as an open node needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx

from node.client import Client, RequestSigner, RpcError
from node.client.rpc import server_names
from node.cluster.consortium import ConsortiumError, load_manifest
from node.runtime.keys import KeyFileError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class ReadAs:
    key: Path | None = None
    chain_id: str | None = None
    ca_cert: Path | None = None
    consortium: Path | None = None
    identity: str | None = None
    tls_server_name: tuple[str, ...] = ()

    def _resolved(self) -> tuple[Path | None, str | None, Path | None]:
        key, chain_id, ca_cert = self.key, self.chain_id, self.ca_cert
        if self.consortium is not None:
            try:
                m = load_manifest(self.consortium)
            except (ConsortiumError, OSError) as exc:
                raise click.ClickException(f"--consortium: {exc}") from None
            chain_id = chain_id or m.chain_id
            ca_cert = ca_cert or m.ca_cert
            if key is None:
                pick = [
                    i
                    for i in m.identities
                    if (i.name == self.identity if self.identity else i.role == "admin")
                ]
                if not pick:
                    raise click.ClickException(
                        f"--identity {self.identity!r} is not in {self.consortium}"
                        if self.identity
                        else f"{self.consortium} lists no admin identity"
                    )
                key = pick[0].key
        return key, chain_id, ca_cert

    def client(self, urls: str | Sequence[str]) -> Client:
        """A client for ``urls`` that signs as this reader (if one is given)."""
        key, chain_id, ca_cert = self._resolved()
        signer = None
        if key is not None:
            if chain_id is None:
                first = urls if isinstance(urls, str) else urls[0]
                names = server_names([first], self.tls_server_name[:1] or None)
                chain_id = _chain_id_of(first, ca_cert, names.get(first))
            try:
                signer = RequestSigner.from_key_file(key, chain_id=chain_id)
            except (KeyFileError, OSError) as exc:
                raise click.ClickException(f"--key: {exc}") from None
        return make_client(urls, ca_cert, self.tls_server_name, signer=signer)


def make_client(
    urls: str | Sequence[str],
    ca_cert: Path | None,
    tls_server_name: tuple[str, ...],
    *,
    signer: RequestSigner | None = None,
) -> Client:
    """A ``Client`` with ``--tls-server-name`` as given: none, one for every URL, or one
    per URL (anything else is a usage error)."""
    names: str | tuple[str, ...] | None = (
        tls_server_name[0] if len(tls_server_name) == 1 else tls_server_name or None
    )
    try:
        return Client(urls, signer=signer, ca_cert=ca_cert, tls_server_name=names)
    except ValueError as exc:
        raise click.UsageError(str(exc).replace("tls_server_name", "--tls-server-name")) from None


def _chain_id_of(url: str, ca_cert: Path | None, server_name: str | None = None) -> str:
    try:
        with Client(url, ca_cert=ca_cert, tls_server_name=server_name, timeout_s=10) as c:
            return str(c.status()["chain_id"])
    except (httpx.HTTPError, RpcError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(
            f"no --chain-id given and {url}/v1/status did not tell it: {exc}"
        ) from None


CA_CERT = click.option(
    "--ca-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="GRANTCHAIN_CA_CERT",
    help="The consortium's CA bundle, to verify an https:// node.",
)
"""``--ca-cert`` alone, for commands that only submit (txs are signed already)."""

TLS_SERVER_NAME_HELP = (
    "Check the node's certificate against this name (its node id) instead of the URL's "
    "host; once per --url, in order, or once for all."
)
TLS_SERVER_NAME = click.option(
    "--tls-server-name",
    "tls_server_name",
    multiple=True,
    envvar="GRANTCHAIN_TLS_SERVER_NAME",
    help=TLS_SERVER_NAME_HELP,
)
"""``--tls-server-name`` alone, with ``CA_CERT``."""


def options(f: F) -> F:
    """The reader options; the command gets them with ``read_as()``."""

    def collect(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        ctx.meta.setdefault("grantchain.read_as", {})[param.name] = value
        return value

    decorators = [
        click.option(
            "--key",
            type=click.Path(path_type=Path, dir_okay=False),
            envvar="GRANTCHAIN_KEY",
            expose_value=False,
            callback=collect,
            help="Sign requests with this identity key file (nodes with rpc_auth = members).",
        ),
        click.option(
            "--chain-id",
            "read_chain_id",
            envvar="GRANTCHAIN_CHAIN_ID",
            expose_value=False,
            callback=collect,
            help="The chain id requests are signed for [asked of the node].",
        ),
        click.option(
            "--ca-cert",
            type=click.Path(path_type=Path, dir_okay=False),
            envvar="GRANTCHAIN_CA_CERT",
            expose_value=False,
            callback=collect,
            help="The consortium's CA bundle, to verify an https:// node.",
        ),
        click.option(
            "--tls-server-name",
            "tls_server_name",
            multiple=True,
            envvar="GRANTCHAIN_TLS_SERVER_NAME",
            expose_value=False,
            callback=collect,
            help=TLS_SERVER_NAME_HELP,
        ),
        click.option(
            "--consortium",
            type=click.Path(path_type=Path, file_okay=False),
            envvar="GRANTCHAIN_CONSORTIUM",
            expose_value=False,
            callback=collect,
            help="A consortium directory: its chain id, CA bundle and an identity's key.",
        ),
        click.option(
            "--identity",
            "read_identity",
            expose_value=False,
            callback=collect,
            help="With --consortium: the identity to read as [its first admin].",
        ),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def read_as() -> ReadAs:
    """The reader the current command's options name."""
    got = click.get_current_context().meta.get("grantchain.read_as", {})
    return ReadAs(
        key=got.get("key"),
        chain_id=got.get("read_chain_id"),
        ca_cert=got.get("ca_cert"),
        consortium=got.get("consortium"),
        identity=got.get("read_identity"),
        tls_server_name=tuple(got.get("tls_server_name") or ()),
    )
