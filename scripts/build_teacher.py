"""Rebuild the demo's teacher shipped with kidsql (`src/kidsql/shipped/teacher/`): train it with the demo's
teacher setup (or reuse the cached one), copy it there, score it, write card.json and README.md.

Run it when the embedded benchmark's format version or the demo's teacher setup changes (the test suite's
`tests/test_shipped_teacher.py` says when), then commit the folder:

    python scripts/build_teacher.py
"""

from __future__ import annotations

import json

from kidsql.experiments.shipped_teacher import SHIPPED_DIR, build_shipped_teacher

if __name__ == "__main__":
    card = build_shipped_teacher()
    print(json.dumps({k: card[k] for k in ("sha256", "dev_scores_first_n")}, indent=2))
    print(f"wrote {SHIPPED_DIR}; commit it")
