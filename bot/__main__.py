"""``python -m bot`` is ``deskbot``."""

from bot.cli import main

main()
