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


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models run far faster on one intra-op thread than on several competing for 2 cores."""
    try:
        import torch
    except ImportError:  # the SQL/data tests do not need torch
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private KIDSQL_CACHE and an empty in-memory value index, so cache tests see only their own builds."""
    from kidsql.data.values import clear_memory_cache

    monkeypatch.setenv("KIDSQL_CACHE", str(tmp_path / "cache"))
    clear_memory_cache()
    yield tmp_path / "cache"
    clear_memory_cache()
