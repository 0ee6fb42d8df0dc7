"""Keep the documentation honest: links resolve, named commands and files exist, the config reference is current."""

from __future__ import annotations

import glob
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vlacrl.config.reference import format_value, leaves, parse_yaml_comments, section_of

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
COMMAND = re.compile(r"(?<![\w./-])vlacrl-[a-z0-9]+(?:-[a-z0-9]+)*")
REPO_PATH = re.compile(r"(?<![\w./$-])((?:examples|scripts|benchmarks|vlacrl|tests)/[\w./*<>-]*?\.(?:sh|py))\b")
LAUNCHER = re.compile(r"(?<![\w.-])((?:run_embodiment_|eval_embodiment|compute_base_logits_embodiment)[\w<>*-]*\.sh)\b")


def project_scripts() -> set[str]:
    """The command names of ``[project.scripts]`` in pyproject.toml (read as text: tomllib needs Python 3.11)."""
    text = (ROOT / "pyproject.toml").read_text()
    section = re.search(r"^\[project\.scripts\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert section, "pyproject.toml has no [project.scripts]"
    return set(re.findall(r"^\s*\"?([\w.-]+)\"?\s*=", section.group(1), re.M))


def _doc_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _exists(pattern: str) -> bool:
    """A repo path exists; ``*`` and ``<placeholder>`` match any name part."""
    pattern = re.sub(r"<[^>]*>", "*", pattern)
    return bool(glob.glob(str(ROOT / pattern))) if "*" in pattern else (ROOT / pattern).exists()


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_relative_links_resolve(doc: Path):
    text = FENCE.sub("", doc.read_text())
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http(s), mailto, ... and anchors within the page
        path = target.split("#", 1)[0]
        if not (doc.parent / path).exists():
            broken.append(target)
    assert not broken, f"{_doc_id(doc)}: links to missing files: {broken}"


def test_named_commands_exist():
    scripts = project_scripts()
    assert "vlacrl-train" in scripts
    unknown = {}
    for doc in DOCS:
        for name in set(COMMAND.findall(doc.read_text())) - scripts:
            unknown.setdefault(name, []).append(_doc_id(doc))
    assert not unknown, f"commands not in [project.scripts]: {unknown}"


def test_named_scripts_and_files_exist():
    missing = {}
    for doc in DOCS:
        text = doc.read_text()
        paths = set(REPO_PATH.findall(text))
        paths |= {f"examples/crl_experiment/{name}" for name in LAUNCHER.findall(text)}
        for path in sorted(paths):
            if not _exists(path):
                missing.setdefault(path, []).append(_doc_id(doc))
    assert not missing, f"files named in the docs do not exist: {missing}"


def test_configuration_reference_is_up_to_date():
    proc = subprocess.run(
        [sys.executable, "-m", "vlacrl.config.reference", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


# ------------------------------------------------------------------------------------ the generator's parts
def test_parse_yaml_comments():
    text = """# File header
# second line.
defaults:
  - er            # not a key
  - _self_

a: 1              # trailing
                  # continued
# block above b
b:
  c: [x, y]       # nested
  d: 2
  # block above e
  e: "x # not a comment"
  f:              # list follows
    - 'p'         # list continues the comment
g: 3
"""
    parsed = parse_yaml_comments(text)
    assert parsed.header == "File header second line."
    assert parsed.comments == {
        ("a",): "trailing continued",
        ("b",): "block above b",
        ("b", "c"): "nested",
        ("b", "e"): "block above e",
        ("b", "f"): "list follows list continues the comment",
    }
    assert parsed.keys == [("a",), ("b",), ("b", "c"), ("b", "d"), ("b", "e"), ("b", "f"), ("g",)]


def test_package_header_is_not_a_description():
    parsed = parse_yaml_comments("# @package _global_\n# Main config.\nx: 1\n")
    assert parsed.package == "_global_" and parsed.header == "Main config."


def test_leaves_sections_and_values():
    tree = {"cluster": {"component_placement": {"actor,env,rollout": "all"}, "address": None},
            "env": {"fixed_task_ids": [0], "train": {"cameras": ["agentview"], "video_cfg": {}}}}  # fmt: skip
    flat = leaves(tree)
    assert flat == {
        "cluster.component_placement": {"actor,env,rollout": "all"},
        "cluster.address": None,
        "env.fixed_task_ids": [0],
        "env.train.cameras": ["agentview"],
        "env.train.video_cfg": {},
    }
    assert [section_of(k) for k in flat] == ["cluster", "cluster", "env", "env.train", "env.train"]
    assert format_value(flat["cluster.component_placement"]) == "{actor,env,rollout: all}"
    assert [format_value(v) for v in (None, True, "", 2e-5, [1, "a"])] == ["null", "true", '""', "2e-05", "[1, a]"]


def test_the_method_hook_table_lists_every_hook_of_the_base_class():
    """docs/architecture.md's CRL method interface table names exactly the hooks ``CRLMethod`` declares."""
    import inspect

    from vlacrl.crl.base import CRLMethod

    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## The CRL method interface", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| side")]
    documented = {name for row in rows for name in re.findall(r"`(\w+)\(", row.split("|")[2])}
    declared = {name for name, _ in inspect.getmembers(CRLMethod, inspect.isfunction) if not name.startswith("_")}
    assert documented == declared, (sorted(declared - documented), sorted(documented - declared))
