"""`python -m backfill_ui` (also installed as `backfill-ui`): serve the console."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from backfill_bus.logs import configure_logging
from backfill_ui.settings import InsecureSettingsError, UiSettings, check_exposure

EXIT_BAD_SETTINGS = 2
STORAGE_DIR = "ui-storage"


def main() -> None:
    configure_logging("ui")
    try:
        settings = UiSettings()
        check_exposure(settings)  # before anything starts: refuse, say why, exit 2
    except (InsecureSettingsError, ValidationError) as error:
        print(f"backfill-ui: refusing to start: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_SETTINGS)
    # Imported only now: the refusal above must not wait for the web stack to load.
    from nicegui import app
    from nicegui.storage import Storage

    from backfill_ui.app import run

    # Sessions (who is logged in, which jobs to announce) live in the state dir, so they
    # survive a console restart like everything else.
    Storage.path = (settings.state_dir / STORAGE_DIR).resolve()
    app.storage = Storage()
    run(settings)


if __name__ == "__main__":
    main()
