"""The two model CLIs, run in-process through their ``main(argv)``."""

from __future__ import annotations

import json

from vlacrl.cli import inspect_model, make_tiny_checkpoint


def test_make_then_inspect_a_tiny_checkpoint(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert make_tiny_checkpoint.main([str(out), "--seed", "1"]) == 0
    assert (out / "model.safetensors.index.json").is_file()
    assert make_tiny_checkpoint.main([str(out)]) == 2  # refuses to overwrite without --force
    capsys.readouterr()
    assert inspect_model.main([str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parameters"] > 1_000_000 and report["dimensions"]["llm_layers"] == 2
    assert report["dimensions"]["patches_per_image"] == 256
    assert "libero_spatial_no_noops" in report["norm_stats_keys"]
    assert report["tokenizer"]["bos_first"] and report["tokenizer"]["last_is_29871"]
    assert len(report["action_tokens"]) == 56 and all(31744 <= t < 32000 for t in report["action_tokens"])
    assert len(report["actions"]) == 8 and all(len(row) == 7 for row in report["actions"])
    assert inspect_model.main([str(out), "--json"]) == 0  # greedy: the same answer twice
    assert json.loads(capsys.readouterr().out)["action_tokens"] == report["action_tokens"]
    assert inspect_model.main([str(out)]) == 0
    assert "greedy actions" in capsys.readouterr().out


def test_inspect_reports_a_bad_directory(tmp_path, capsys):
    assert inspect_model.main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "config.json" in err and "model/README.md" in err
