"""What benchmark scripts do with their results: save them as JSON (and print them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save_json(result: dict[str, Any], out: Path) -> str:
    """Write ``result`` as indented JSON to ``out`` (creating its folder); return the text."""
    text = json.dumps(result, indent=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    return text


def print_and_save(result: dict[str, Any], out: Path | None) -> None:
    """Print ``result`` as indented JSON and, if ``out`` is given, write the same text there."""
    print(save_json(result, out) if out else json.dumps(result, indent=2))
