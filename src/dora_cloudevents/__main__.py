"""``python -m dora_cloudevents`` is ``dora-ce``."""

from dora_cloudevents.cli import main

main()
