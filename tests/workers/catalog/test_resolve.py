"""The offline model catalog: lookup errors, checksum verification and manifests (no models)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

import pytest

from workers.catalog import CATALOG, CatalogEntry, PackageFile, is_pulled, list_models, resolve
from workers.catalog.gguf_check import check_gguf
from workers.catalog.join import assemble
from workers.catalog.manifest import Manifest, hash_weights, write_manifest
from workers.catalog.packages import locate_part, record_sha256
from workers.catalog.paths import MANIFEST_NAME, cache_dir, model_dir
from workers.catalog.store import get_entry, pull
from workers.errors import (
    CatalogError,
    ChecksumMismatchError,
    ModelNotPulledError,
    PullError,
    UnknownModelError,
)

CHUNKS = (b"GGUF" + b"\x01" * 1000, b"\x02" * 777, b"\x03" * 5)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SYSTEM2_CACHE", str(cache))


def _parts_on_disk(tmp_path: Path) -> dict[PackageFile, Path]:
    located: dict[PackageFile, Path] = {}
    for i, chunk in enumerate(CHUNKS):
        path = tmp_path / "pkgs" / f"part{i:02d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(chunk)
        located[PackageFile(f"no-such-dist-part{i}", "0.0.0", f"data/part{i:02d}.bin")] = path
    return located


def _entry(parts: tuple[PackageFile, ...], *, sha256: str | None = None) -> CatalogEntry:
    joined = b"".join(CHUNKS)
    return CatalogEntry(
        name="tiny-synthetic",
        kind="causal_lm",
        description="three chunks written by the test",
        license="none",
        parts=parts,
        sha256=sha256 or hashlib.sha256(joined).hexdigest(),
        size_bytes=len(joined),
    )


def _converted_dir(name: str) -> Path:
    directory = model_dir(name)
    directory.mkdir(parents=True)
    (directory / "config.json").write_text("{}")
    (directory / "model.safetensors").write_bytes(b"weights" * 100)
    manifest = Manifest(
        name=name,
        source_sha256=get_entry(name).sha256,
        source_size_bytes=get_entry(name).size_bytes,
        dtype="float32",
        weights=hash_weights(directory),
    )
    write_manifest(directory, manifest)
    return directory


def test_cache_dir_follows_env(tmp_path: Path) -> None:
    """The cache root is $SYSTEM2_CACHE when set."""
    assert cache_dir() == tmp_path / "cache"


def test_catalog_entries_are_well_formed() -> None:
    """Every entry has a full sha256, a positive size, and GGUF entries name an architecture."""
    assert {"smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "all-minilm-l6-v2"} <= set(
        CATALOG
    )
    for entry in CATALOG.values():
        assert len(entry.sha256) == 64
        assert int(entry.sha256, 16) >= 0
        assert entry.size_bytes > 0
        assert entry.parts
        assert (entry.expected_architecture is not None) == (entry.source_format == "gguf")


def test_unknown_name_lists_known_models() -> None:
    """Looking up a name not in the catalog raises UnknownModelError listing the known names."""
    with pytest.raises(UnknownModelError) as info:
        get_entry("gpt-5")
    for name in CATALOG:
        assert name in str(info.value)
    with pytest.raises(UnknownModelError):
        resolve("gpt-5")


def test_pull_rejects_unknown_name() -> None:
    """Pulling an unknown name fails before touching pip or the cache."""
    with pytest.raises(UnknownModelError):
        pull("gpt-5", progress=False)
    assert not cache_dir().exists()


def test_resolve_missing_model_says_pull_command() -> None:
    """Resolving a catalog model that was never pulled names the pull command to run."""
    with pytest.raises(ModelNotPulledError, match="system2 models pull smollm2-135m-instruct"):
        resolve("smollm2-135m-instruct")
    assert not is_pulled("smollm2-135m-instruct")


def test_join_gives_recorded_sha256(tmp_path: Path) -> None:
    """Joining the located parts in order yields the file whose sha256 the entry records."""
    located = _parts_on_disk(tmp_path)
    entry = _entry(tuple(located))
    dest = assemble(
        entry, tmp_path / "out" / "tiny.gguf", locate=located.__getitem__, progress=False
    )
    assert dest.read_bytes() == b"".join(CHUNKS)
    assert not dest.with_name("tiny.gguf.partial").exists()


def test_corrupted_chunk_raises_checksum_mismatch(tmp_path: Path) -> None:
    """A corrupted chunk makes the join fail with ChecksumMismatchError naming the file."""
    located = _parts_on_disk(tmp_path)
    entry = _entry(tuple(located))
    located[entry.parts[1]].write_bytes(b"\x02" * 776 + b"X")
    dest = tmp_path / "out" / "tiny.gguf"
    with pytest.raises(ChecksumMismatchError, match=r"tiny\.gguf") as info:
        assemble(entry, dest, locate=located.__getitem__, progress=False)
    assert info.value.expected == entry.sha256
    assert not dest.exists()
    assert not dest.with_name("tiny.gguf.partial").exists()


def test_wrong_order_fails_checksum(tmp_path: Path) -> None:
    """Parts joined in another order than recorded do not pass the checksum."""
    located = _parts_on_disk(tmp_path)
    entry = _entry(tuple(located))
    swapped = _entry(tuple(reversed(entry.parts)), sha256=entry.sha256)
    with pytest.raises(ChecksumMismatchError):
        assemble(swapped, tmp_path / "tiny.gguf", locate=located.__getitem__, progress=False)


def test_resolve_verifies_manifest() -> None:
    """resolve returns a pulled model's directory and catches a modified weights file."""
    directory = _converted_dir("smollm2-135m-instruct")
    assert resolve("smollm2-135m-instruct") == directory
    assert is_pulled("smollm2-135m-instruct")
    (directory / "model.safetensors").write_bytes(b"tampered" * 100)
    assert resolve("smollm2-135m-instruct", verify=False) == directory
    with pytest.raises(ChecksumMismatchError, match=r"model\.safetensors"):
        resolve("smollm2-135m-instruct")


def test_resolve_catches_unlisted_weights_file() -> None:
    """A weights file the manifest does not list fails verification."""
    directory = _converted_dir("smollm2-135m-instruct")
    (directory / "extra.safetensors").write_bytes(b"sneaky")
    with pytest.raises(ChecksumMismatchError, match=r"extra\.safetensors"):
        resolve("smollm2-135m-instruct")


def test_pull_of_converted_model_returns_at_once() -> None:
    """A second pull of an already converted model returns its directory without installing."""
    directory = _converted_dir("smollm2-135m-instruct")

    def no_locating(part: PackageFile) -> Path:
        raise AssertionError(f"should not locate {part}")

    assert pull("smollm2-135m-instruct", progress=False, locate=no_locating) == directory


def test_list_models_reports_status() -> None:
    """list_models marks pulled models as pulled and the rest as not pulled."""
    _converted_dir("smollm2-135m-instruct")
    status = {entry.name: state for entry, state in list_models()}
    assert status["smollm2-135m-instruct"] == "pulled"
    assert status["qwen2.5-coder-0.5b-instruct"] == "not pulled"


def test_manifest_from_another_source_is_not_pulled() -> None:
    """A converted directory whose manifest names another source sha256 counts as not pulled."""
    directory = _converted_dir("smollm2-135m-instruct")
    raw = json.loads((directory / MANIFEST_NAME).read_text())
    raw["source_sha256"] = "0" * 64
    (directory / MANIFEST_NAME).write_text(json.dumps(raw))
    assert not is_pulled("smollm2-135m-instruct")
    with pytest.raises(ModelNotPulledError):
        resolve("smollm2-135m-instruct")


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


def _hf_dir_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[CatalogEntry, Path]:
    """A synthetic ready-made HF directory registered in the catalog, with pip stubbed out."""
    source = tmp_path / "pkg" / "model"
    (source / "1_Pooling").mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "1_Pooling" / "config.json").write_text("{}")
    weights = source / "model.safetensors"
    weights.write_bytes(b"embedder weights")
    part = PackageFile("no-such-embedder", "0.0.0", "pkg/model/model.safetensors")
    entry = CatalogEntry(
        name="tiny-embedder",
        kind="sentence_embedder",
        description="synthetic",
        license="none",
        parts=(part,),
        sha256=hashlib.sha256(b"embedder weights").hexdigest(),
        size_bytes=len(b"embedder weights"),
        source_format="hf_dir",
    )
    monkeypatch.setitem(CATALOG, entry.name, entry)
    monkeypatch.setattr("workers.catalog.store.ensure_installed", lambda packages: [])
    return entry, weights


def test_pull_copies_hf_dir_and_writes_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pulling a ready-made directory copies it whole and resolve then verifies its weights."""
    entry, weights = _hf_dir_entry(tmp_path, monkeypatch)
    directory = pull(entry.name, progress=False, locate=lambda part: weights)
    assert directory == model_dir(entry.name)
    assert (directory / "1_Pooling" / "config.json").is_file()
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    assert manifest["weights"] == {"model.safetensors": entry.sha256}
    assert resolve(entry.name) == directory
    assert not list(directory.parent.glob(".*"))  # no staging directory left behind


def test_pull_rejects_corrupted_hf_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ready-made directory whose weights differ from the catalog fails, naming the file."""
    entry, weights = _hf_dir_entry(tmp_path, monkeypatch)
    weights.write_bytes(b"embedder weightz")
    with pytest.raises(ChecksumMismatchError, match=r"model\.safetensors"):
        pull(entry.name, progress=False, locate=lambda part: weights)
    assert not model_dir(entry.name).exists()
    assert not list(model_dir(entry.name).parent.glob(".*"))


def test_check_gguf_rejects_non_gguf(tmp_path: Path) -> None:
    """A file without the GGUF magic is refused before conversion."""
    located = _parts_on_disk(tmp_path)
    entry = _entry(tuple(located))
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(PullError, match="not a GGUF"):
        check_gguf(entry, bogus)


def test_locate_part_uses_installed_record() -> None:
    """Parts are found through an installed distribution's RECORD, whose hash they match."""
    version = importlib.metadata.version("pytest")
    part = PackageFile("pytest", version, "pytest/__init__.py")
    path = locate_part(part)
    assert path.name == "__init__.py"
    assert record_sha256(part) == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(PullError, match="catalog needs"):
        locate_part(PackageFile("pytest", "0.0.1", "pytest/__init__.py"))
    with pytest.raises(PullError, match="not listed"):
        locate_part(PackageFile("pytest", version, "pytest/no_such_file.py"))
    with pytest.raises(PullError, match="not installed"):
        locate_part(PackageFile("no-such-dist-anywhere", "1.0", "x.py"))


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
