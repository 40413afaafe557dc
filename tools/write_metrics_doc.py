"""Write docs/metrics.md from src/phononft/metrics.py (the one definition of the table's metrics).

    python tools/write_metrics_doc.py          # (re)write docs/metrics.md
    python tools/write_metrics_doc.py --check  # exit 1 if docs/metrics.md is not the generated text
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "metrics.md"
sys.path.insert(0, str(REPO / "src"))  # the checkout's phononft, installed or not

from phononft.io import atomic_path  # noqa: E402
from phononft.metrics import markdown  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 when the file differs")
    parser.add_argument("--out", type=Path, default=DOC, help=f"output file (default {DOC.relative_to(REPO)})")
    args = parser.parse_args(argv)
    text = markdown()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
        if current != text:
            print(f"{args.out} is out of date: run python tools/write_metrics_doc.py", file=sys.stderr)
            return 1
        return 0
    with atomic_path(args.out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
