"""Shared fixtures: where the real data lies (skip when absent) and small hand-built SQLite databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from kidsql.paths import shared_data_dir


@pytest.fixture(scope="session")
def spider_de() -> Path:
    """`../shared/data/spider-de`, or skip: the real German Spider dev set is not part of the repository."""
    path = shared_data_dir() / "spider-de"
    if not (path / "dev.json").is_file():
        pytest.skip(f"real data absent: {path} (set KIDSQL_SHARED_DATA or place ../shared/data beside the checkout)")
    return path
