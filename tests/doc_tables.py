"""Tables the tests generate into docs/: the text between two HTML-comment markers of a markdown file.

Used by tests/reliability/bad_input_table.py and tests/config/faithfulness_table.py (each also a script:
``python <module> --write`` regenerates its table).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable


def marked_block(doc: Path, name: str) -> str:
    """The text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` in ``doc``, stripped."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    return doc.read_text().split(begin, 1)[1].split(end, 1)[0].strip()


def write_marked_block(doc: Path, name: str, table: str) -> None:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    head, rest = doc.read_text().split(begin, 1)
    doc.write_text(f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}")


def main(doc: Path, name: str, render: Callable[[], str]) -> None:
    """The table generator's command line: ``--write`` puts the table into ``doc``; it is printed either way."""
    if sys.argv[1:] == ["--write"]:
        write_marked_block(doc, name, render())
    print(render())
