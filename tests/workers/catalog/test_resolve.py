"""Resolving a pulled model checks every file of its directory against the manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from workers.catalog import is_pulled, list_models, resolve
from workers.catalog.manifest import (
    Manifest,
    read_manifest,
    record_files,
    verify_files,
    write_manifest,
)
from workers.catalog.paths import MANIFEST_NAME, model_dir
from workers.catalog.store import get_entry
from workers.errors import CatalogError, ChecksumMismatchError, ModelNotPulledError

NAME = "smollm2-135m-instruct"


def _pulled_dir(name: str = NAME) -> Path:
    """A directory laid out like a converted model, with a manifest listing every file."""
    directory = model_dir(name)
    directory.mkdir(parents=True)
    (directory / "config.json").write_text('{"model_type": "llama"}')
    (directory / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}')
    (directory / "chat_template.jinja").write_text("{{ messages }}")
    (directory / "model.safetensors").write_bytes(b"weights" * 100)
    entry = get_entry(name)
    manifest = Manifest(
        name=name,
        source_sha256=entry.sha256,
        source_size_bytes=entry.size_bytes,
        dtype="float32",
        files=record_files(directory),
    )
    write_manifest(directory, manifest)
    return directory


def _rewrite_keeping_stat(path: Path, data: bytes) -> None:
    """Change a file's bytes, then put back its modification time."""
    stat = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_resolve_missing_model_says_pull_command() -> None:
    """Resolving a catalog model that was never pulled names the pull command to run."""
    with pytest.raises(ModelNotPulledError, match=f"system2 models pull {NAME}"):
        resolve(NAME)
    assert not is_pulled(NAME)


@pytest.mark.parametrize(
    "file", ["tokenizer.json", "config.json", "chat_template.jinja", "model.safetensors"]
)
def test_changed_file_is_refused_on_load(file: str) -> None:
    """Any changed file (tokenizer, config, template, weights) is refused on load, and the
    error names the file and both hashes; ``verify=False`` skips the check."""
    directory = _pulled_dir()
    assert resolve(NAME) == directory
    manifest = read_manifest(directory)
    assert manifest is not None
    expected = manifest.files[file].sha256
    (directory / file).write_bytes((directory / file).read_bytes() + b" ")
    with pytest.raises(ChecksumMismatchError) as info:
        resolve(NAME)
    assert info.value.path == str(directory / file)
    assert expected in str(info.value)
    assert info.value.actual in str(info.value)
    assert info.value.actual != expected
    assert resolve(NAME, verify=False) == directory


def test_unlisted_file_is_refused() -> None:
    """A file the manifest does not list (here a tokenizer config) fails verification."""
    directory = _pulled_dir()
    (directory / "tokenizer_config.json").write_text('{"add_bos_token": false}')
    with pytest.raises(ChecksumMismatchError, match=r"tokenizer_config\.json"):
        resolve(NAME)


def test_missing_file_says_pull_command() -> None:
    """A listed file that is gone makes the model not pulled, naming the file."""
    directory = _pulled_dir()
    (directory / "tokenizer.json").unlink()
    with pytest.raises(ModelNotPulledError, match=r"tokenizer\.json is missing"):
        resolve(NAME)


def test_large_files_are_checked_by_size_and_mtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files above the threshold are trusted on an unchanged size and mtime, re-hashed when
    either moved (and refused if different), and re-stamped when found intact."""
    monkeypatch.setattr("workers.catalog.manifest.FULL_HASH_BELOW", 100)
    directory = _pulled_dir()
    weights = directory / "model.safetensors"
    original = weights.read_bytes()
    manifest = read_manifest(directory)
    assert manifest is not None
    # An edit that keeps size and mtime passes the quick check, not a full one.
    _rewrite_keeping_stat(weights, original.replace(b"w", b"W", 1))
    assert resolve(NAME) == directory
    with pytest.raises(ChecksumMismatchError):
        verify_files(directory, manifest, full=True)
    # A moved mtime makes the load hash the file, which then fails.
    os.utime(weights, ns=(0, manifest.files["model.safetensors"].mtime_ns + 10**9))
    with pytest.raises(ChecksumMismatchError, match=r"model\.safetensors"):
        resolve(NAME)
    # So does a changed size, whatever the mtime.
    _rewrite_keeping_stat(weights, original + b"x")
    with pytest.raises(ChecksumMismatchError, match=r"model\.safetensors"):
        resolve(NAME)
    # Intact bytes with a new mtime (a copied cache) load, and the manifest records the mtime.
    weights.write_bytes(original)
    assert resolve(NAME) == directory
    restamped = read_manifest(directory)
    assert restamped is not None
    assert restamped.files["model.safetensors"].mtime_ns == weights.stat().st_mtime_ns
    assert verify_files(directory, restamped) == {}


def test_list_models_reports_status() -> None:
    """list_models marks pulled models as pulled and the rest as not pulled."""
    _pulled_dir()
    status = {entry.name: state for entry, state in list_models()}
    assert status[NAME] == "pulled"
    assert status["qwen2.5-coder-0.5b-instruct"] == "not pulled"


def test_manifest_from_another_source_is_not_pulled() -> None:
    """A directory whose manifest names another source sha256 counts as not pulled."""
    directory = _pulled_dir()
    raw = json.loads((directory / MANIFEST_NAME).read_text())
    raw["source_sha256"] = "0" * 64
    (directory / MANIFEST_NAME).write_text(json.dumps(raw))
    assert not is_pulled(NAME)
    with pytest.raises(ModelNotPulledError):
        resolve(NAME)


def test_resolve_accepts_local_directory(tmp_path: Path) -> None:
    """A local directory with a config.json resolves to itself; other paths are errors."""
    local = tmp_path / "my-model"
    local.mkdir()
    with pytest.raises(CatalogError, match=r"config\.json"):
        resolve(str(local))
    (local / "config.json").write_text("{}")
    (local / "model.safetensors").write_bytes(b"w")
    assert resolve(str(local)) == local
    with pytest.raises(CatalogError, match="no model directory"):
        resolve(str(tmp_path / "missing"))


def test_local_copy_with_old_manifest_is_refused_clearly() -> None:
    """A local directory carrying a format 1 manifest is refused with what to do about it."""
    directory = _pulled_dir()
    raw = json.loads((directory / MANIFEST_NAME).read_text())
    raw["format_version"] = 1
    raw["weights"] = {"model.safetensors": raw.pop("files")["model.safetensors"]["sha256"]}
    (directory / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(CatalogError, match="pull the model again, or delete the manifest"):
        resolve(str(directory))
    assert resolve(str(directory), verify=False) == directory
