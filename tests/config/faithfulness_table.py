"""The faithfulness table of docs/reproducing.md: the paper's experiment settings, the reference's value and file,
vlacrl's key and value, and whether they are the same. ``test_faithfulness.py`` composes vlacrl's configs and
checks every row, so the table stays true.

Regenerate the docs table after editing the rows:  python tests/config/faithfulness_table.py --write
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: doc_tables, also when run as a script
from doc_tables import main, marked_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reproducing.md"
TABLE = "faithfulness-table"  # the markers in DOC
REF_CONFIGS = "examples/embodiment/config/crl_experiment/"
SPATIAL, OBJECT, LONG = ("libero_spatial_grpo_openvlaoft_spatial", "libero_object_grpo_openvlaoft_object",
                         "libero_10_grpo_openvlaoft_long")  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One setting: vlacrl's ``key`` in ``crl_experiment/<config>`` (with ``overrides``) must equal ``value``;
    ``reference`` is the reference's value in ``source``; ``change`` is empty when they are the same."""

    setting: str
    reference: Any
    source: str
    config: str
    key: str
    value: Any
    overrides: tuple[str, ...] = ()
    change: str = ""


def row(setting, reference, source, config, key, value=None, *overrides, change=""):  # noqa: PLR0917
    return Row(setting, reference, source, config, key, reference if value is None else value, overrides, change)


SP, OB, LG = SPATIAL, OBJECT, LONG
R = REF_CONFIGS
ROWS: tuple[Row, ...] = (
    row("global steps per task (Spatial, Object)", 10, R + SP + ".yaml", SP, "runner.max_epochs"),
    row("global steps per task (LIBERO-10)", 5, R + LG + ".yaml", LG, "runner.max_epochs"),
    row("rollout epochs per global step", 16, R + SP + ".yaml", SP, "algorithm.rollout_epoch"),
    row("GRPO group size", 8, R + SP + ".yaml", SP, "algorithm.group_size"),
    row("GRPO groups (64 training envs)", 8, R + SP + ".yaml", SP, "algorithm.num_group_envs"),
    row("episode length (env steps)", 512, "examples/embodiment/config/env/train/libero_spatial.yaml", SP,
        "env.train.max_episode_steps"),
    row("actions per chunk", 8, R + SP + ".yaml", SP, "actor.model.num_action_chunks"),
    row("relative success reward", 5.0, "examples/embodiment/config/env/train/libero_spatial.yaml", SP,
        "env.train.reward_coef"),
    row("evaluation envs (8 per task)", 80, R + SP + ".yaml", SP, "env.eval.num_envs"),
    row("evaluation epochs after each stage (Spatial)", 40, R + "libero_spatial_grpo_openvlaoft_eval_spatial.yaml", SP,
        "crl.eval_overrides.algorithm.eval_rollout_epoch"),
    row("evaluation epochs after each stage (Object)", 40, R + "libero_object_grpo_openvlaoft_eval_object.yaml",
        OB, "crl.eval_overrides.algorithm.eval_rollout_epoch"),
    row("evaluation epochs after each stage (LIBERO-10)", 40, R + "libero_10_grpo_openvlaoft_eval_long.yaml",
        LG, "crl.eval_overrides.algorithm.eval_rollout_epoch"),
    row("learning rate (LoRA)", 2.0e-5, R + SP + ".yaml", SP, "actor.optim.lr"),
    row("value-head learning rate (PPO)", 3.0e-3, R + SP + ".yaml", SP, "actor.optim.value_lr"),
    row("gradient clip", 1.0, R + SP + ".yaml", SP, "actor.optim.clip_grad"),
    row("AdamW eps in the config (AdamW itself uses 1e-8: the key is not passed, in both)", 1.0e-5,
        R + SP + ".yaml", SP, "actor.optim.adam_eps"),
    row("micro-batch", 32, R + SP + ".yaml", SP, "actor.micro_batch_size"),
    row("global batch (8 AdamW steps per global step)", 8192, R + SP + ".yaml", SP, "actor.global_batch_size"),
    row("clip ratio, low", 0.2, R + SP + ".yaml", SP, "algorithm.clip_ratio_low"),
    row("clip ratio, high", 0.28, R + SP + ".yaml", SP, "algorithm.clip_ratio_high"),
    row("sampling temperature, training", 1.6, R + SP + ".yaml", SP, "algorithm.sampling_params.temperature_train"),
    row("sampling temperature, evaluation", 1.6, R + SP + ".yaml", SP, "algorithm.sampling_params.temperature_eval"),
    row("GRPO group filter", True, R + SP + ".yaml", SP, "algorithm.filter_rewards"),
    row("group filter bounds, lower", 0.5, R + SP + ".yaml", SP, "algorithm.rewards_lower_bound"),
    row("group filter bounds, upper", 4.5, R + SP + ".yaml", SP, "algorithm.rewards_upper_bound"),
    row("advantage", "embodied_grpo", R + SP + ".yaml", SP, "algorithm.adv_type"),
    row("LoRA rank (α = r)", 32, R + SP + ".yaml", SP, "actor.model.lora_rank"),
    row("precision", "bf16", R + SP + ".yaml", SP, "actor.model.precision"),
    row("SFT checkpoint (Spatial; under the checkout, as $REPO_PATH in the reference)",
        "model/Openvla-oft-SFT-libero-spatial-traj1", R + SP + ".yaml", SP, "actor.checkpoint_load_path"),
    row("action statistics (Object)", "libero_object_no_noops", R + OB + ".yaml", OB, "actor.model.unnorm_key"),
    row("first Object task of the launchers", [5], R + OB + ".yaml", OB, "env.fixed_task_ids"),
    row("EWC λ", 1.0e6, "rlinf/algorithms/ewc.py (code default)", SP, "crl.ewc_lambda", None, "crl=ewc"),
    row("ER behaviour-cloning coefficient", 0.03, "examples/crl_experiment/run_embodiment_er.sh (ER_COEFF)", SP,
        "crl.bc_coeff", None, "crl=er"),
    row("DER logit-matching coefficient", 0.03, "examples/crl_experiment/run_embodiment_der.sh (DER_COEFF)", SP,
        "crl.bc_coeff", None, "crl=der"),
    row("ER demos per task", 1, "examples/crl_experiment/run_embodiment_er.sh (demo_0 of each task)", SP,
        "crl.demos_per_task", None, "crl=er"),
    row("weight-merge coefficient", 0.5, "examples/crl_experiment/run_embodiment_weight_merge.sh (MERGE_COEFF)", SP,
        "crl.merge_coefficient", None, "crl=weight_merge"),
    row("EWC Fisher gradient rescale", 100.0, "rlinf/algorithms/ewc.py", SP, "crl.fisher_grad_norm_max", None,
        "crl=ewc"),
)  # fmt: skip


def shown(value: Any) -> str:
    return f"`{value}`"


def markdown_table() -> str:
    lines = ["| setting | reference (file) | vlacrl (config: key) | same? |", "|---|---|---|---|"]
    for r in ROWS:
        where = f"`{r.config}`{' ' + ' '.join(r.overrides) if r.overrides else ''}: `{r.key}` = {shown(r.value)}"
        status = f"changed: {r.change}" if r.change else "same"
        lines.append(f"| {r.setting} | {shown(r.reference)} (`{r.source}`) | {where} | {status} |")
    return "\n".join(lines)


def documented_table() -> str:
    return marked_block(DOC, TABLE)


if __name__ == "__main__":
    main(DOC, TABLE, markdown_table)
