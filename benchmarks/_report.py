"""What every benchmark script does with its result: print it, and save it if asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def print_and_save(result: dict[str, Any], out: Path | None) -> None:
    """Print ``result`` as indented JSON and, if ``out`` is given, write the same text there."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
