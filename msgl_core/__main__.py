"""``python -m msgl_core`` runs the ``msgl`` command."""

from msgl_core.cli import main

main()
