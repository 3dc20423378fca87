"""Where shared, non-committed data lives, so tests and benchmarks find it without hard-coded paths."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """The `../shared/data` folder beside the checkout, or `$KIDSQL_SHARED_DATA` when set."""
    env = os.environ.get("KIDSQL_SHARED_DATA")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data"


def cache_dir() -> Path:
    """Root of kidsql's on-disk caches (value indexes, gold results, trained models); `$KIDSQL_CACHE` overrides."""
    env = os.environ.get("KIDSQL_CACHE")
    root = Path(env) if env else Path.home() / ".cache" / "kidsql"
    root.mkdir(parents=True, exist_ok=True)
    return root
