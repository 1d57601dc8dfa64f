"""`python -m kiwi_platform` is the `kiwi` command."""

from kiwi_platform.launcher import main

main()
