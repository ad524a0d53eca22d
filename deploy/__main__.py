"""``python -m deploy`` is the ``partnermesh`` command (for images without its script)."""

from deploy.cli import main

main()
