"""`python -m kiwi_platform` is the `kiwi` command."""

from kiwi_platform.cli import main

main()
