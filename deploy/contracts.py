"""Write the generated contract documents: ``python -m deploy.contracts [DIR]``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from contracts.export import documents


def all_documents() -> dict[str, Any]:
    docs = documents()
    try:
        has_gateway = importlib.util.find_spec("gateway.openapi") is not None
    except ModuleNotFoundError:
        has_gateway = False
    if has_gateway:
        from gateway.openapi import openapi_document

        docs["openapi.json"] = openapi_document()
    return docs


def render(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "contracts/generated")
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in all_documents().items():
        (out / name).write_text(render(doc))
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
