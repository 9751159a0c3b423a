"""``system2 latent`` on a tiny random model: every step from the command line, the
training budget, a rerun that skips, and bad input refused with exit code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from system2.cli.main import app
from system2.pipelines.latent import PipelineLayout, read_step
from tests.system2.pipelines.latent.tiny_pipeline import base_checkpoint


def test_latent_steps_from_the_command_line(tmp_path: Path) -> None:
    """chains (gold, 3 GSM-Symbolic items) -> vqvae -> finetune -> codi, 1 step each; the
    budget lists all four steps; rerunning vqvae trains nothing; a changed config and an
    evaluation seed are refused."""
    base = str(base_checkpoint(tmp_path / "base"))
    out = tmp_path / "run"
    common = ["--out", str(out), "-m", base, "--max-length", "4000", "--threads", "1"]
    vqvae = ["latent", "vqvae", *common, "--chunk-tokens", "8", "--dim", "16", "--layers", "1"]
    vqvae += ["--steps", "3", "--batch", "8"]
    runner = CliRunner()
    steps = [
        ["latent", "chains", "--out", str(out), "--limit", "3"],
        vqvae,
        ["latent", "finetune", *common, "--max-steps", "1", "--batch", "2"],
        ["latent", "codi", *common, "--max-steps", "1", "--batch", "2", "--thoughts", "2"],
    ]
    for args in steps:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    layout = PipelineLayout(out)
    for directory in (layout.vqvae, layout.finetune("latent"), layout.finetune("text")):
        assert read_step(directory) is not None
    codi = read_step(layout.codi)
    assert codi is not None
    assert codi.config["thoughts"] == 2
    budget = runner.invoke(app, ["latent", "budget", "--out", str(out)])
    assert budget.exit_code == 0
    for step in ("vqvae", "finetune-latent", "finetune-text", "codi"):
        assert step in budget.output

    weights = layout.vqvae / "vqvae.safetensors"
    written = weights.stat().st_mtime_ns
    assert runner.invoke(app, vqvae).exit_code == 0
    assert weights.stat().st_mtime_ns == written
    changed = runner.invoke(app, [*vqvae[:-4], "--steps", "4", "--batch", "8"])
    assert changed.exit_code == 2
    assert "--force" in changed.output
    refused = runner.invoke(app, ["latent", "chains", "--out", str(out), "--seed", "1000"])
    assert refused.exit_code == 2
    assert "kept for evaluation" in refused.output
