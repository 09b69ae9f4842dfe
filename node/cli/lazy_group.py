"""``LazyGroup``: a click group whose subcommands are imported when first used, and
which turns a node that cannot be reached (connection refused, a certificate that does
not verify, a timeout) into a one-line error instead of a traceback."""

from __future__ import annotations

import importlib
from typing import Any

import click


class LazyGroup(click.Group):
    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module = importlib.import_module(self._lazy[cmd_name][0])
            command: click.Command = module.command
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if type(exc).__module__.startswith("httpx"):
                import httpx  # only on this path: the CLI's start does not pay for it

                if isinstance(exc, httpx.TransportError):
                    try:
                        where = f" {exc.request.url}"
                    except RuntimeError:  # httpx: no request attached
                        where = ""
                    raise click.ClickException(f"cannot reach the node{where}: {exc}") from None
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self._lazy[name][1]) for name in sorted(self._lazy)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
