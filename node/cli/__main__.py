"""``python -m node.cli``: the ``grantchain`` command."""

from node.cli import main

main()
