"""Generate the configuration reference (``docs/configuration.md``) from ``configs/``.

The main configs of :data:`MAIN_CONFIGS` and every method of ``configs/crl/`` are composed with
:func:`vlacrl.config.compose.compose` (without resolving ``${...}`` interpolations); every leaf key becomes a
table row. The comment of a row is the YAML line's trailing ``# comment`` (with its continuation lines), or
else the comment lines directly above the key, taken from the config files the composition reads (found by
following their ``defaults:`` lists).

    python -m vlacrl.config.reference --out docs/configuration.md    # (re)write the reference
    python -m vlacrl.config.reference --check                        # exit 1 when the file is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from omegaconf import OmegaConf

from vlacrl.config.compose import compose
from vlacrl.paths import config_dir

#: Main configs whose values are shown side by side (the CPU default and the paper's setting).
MAIN_CONFIGS = ("cpu_tiny", "crl_experiment/libero_spatial_grpo_openvlaoft_spatial")
#: One table per section, in this order; a leaf belongs to the longest section that prefixes it.
SECTIONS = ("cluster", "runner", "algorithm", "actor", "rollout", "env", "env.train", "env.eval", "crl")
#: Mappings shown as one value (their keys are data, not config keys).
LEAF_MAPPINGS = ("cluster.component_placement",)
GENERATE_COMMAND = "python -m vlacrl.config.reference --out docs/configuration.md"

_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w,.\-]*)\s*:(?:\s|$)")
_PACKAGE = re.compile(r"^#\s*@package\s+(?P<package>\S+)")


# ------------------------------------------------------------------------------------ YAML comments
@dataclass
class YamlComments:
    """The comments of one YAML file: the header (leading comment lines) and one comment per key path."""

    header: str = ""
    comments: dict[tuple[str, ...], str] = field(default_factory=dict)
    keys: list[tuple[str, ...]] = field(default_factory=list)  # every key path, in file order
    package: str | None = None  # from a ``# @package`` line


def _split_comment(line: str) -> tuple[str, str | None, int]:
    """``(code, comment, column of '#')`` of one line; a ``#`` inside quotes or not after a blank is code."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip(), line[i + 1 :].strip(), i
    return line.rstrip(), None, -1


def parse_yaml_comments(text: str) -> YamlComments:
    """Key paths and their comments from a YAML file's text (block mappings as the configs write them).

    Lists and the ``defaults:`` / ``hydra:`` blocks are skipped. A comment-only line whose ``#`` is in the
    column of the previous line's trailing comment continues that comment; other comment-only lines directly
    above a key (same indentation, no blank line between) are that key's comment when it has no trailing one.
    """
    out = YamlComments()
    header: list[str] = []
    in_header = True
    block: list[tuple[int, str]] = []  # (indent, text) of comment lines waiting for a key
    stack: list[tuple[int, str]] = []
    last_key: tuple[str, ...] | None = None
    last_column = -1
    skip_indent: int | None = None  # inside a skipped block (defaults, hydra, list items)
    for raw in text.splitlines():
        code, comment, column = _split_comment(raw)
        if not code.strip():
            if comment is None:  # blank line
                in_header = False
                block, last_key, last_column = [], None, -1
                continue
            package = _PACKAGE.match(raw.strip())
            if package:
                out.package = package.group("package")
                continue
            if in_header:
                header.append(comment)
                continue
            if last_key is not None and column == last_column:
                out.comments[last_key] = f"{out.comments[last_key]} {comment}".strip()
                continue
            last_key, last_column = None, -1
            block.append((column, comment))
            continue
        in_header = False
        indent = len(code) - len(code.lstrip(" "))
        if skip_indent is not None and indent > skip_indent:
            continue
        skip_indent = None
        match = _KEY_LINE.match(code)
        if match is None:  # a list item or a flow value: not a key (its aligned comment continues the key's)
            if last_key is not None and comment is not None and column == last_column:
                out.comments[last_key] = f"{out.comments[last_key]} {comment}".strip()
            else:
                last_key, last_column = None, -1
            block = []
            continue
        key = match.group("key")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(k for _, k in stack), key)
        stack.append((indent, key))
        if indent == 0 and key in ("defaults", "hydra"):
            skip_indent, block, last_key, last_column = 0, [], None, -1
            continue
        above = " ".join(text for col, text in block if col == indent)
        parts = [p for p in (above, comment) if p]
        if parts:
            out.comments[path] = " ".join(parts)
        out.keys.append(path)
        block = []
        last_key, last_column = (path, column) if comment is not None else (None, -1)
    out.header = " ".join(h for h in header if h)
    return out


# ------------------------------------------------------------------------------------ which files a config reads
def _group_of(path: Path) -> str:
    """``env/train`` for ``configs/env/train/x.yaml``; ``""`` for a file at the top of ``configs/``."""
    rel = path.parent.relative_to(config_dir())
    return "" if str(rel) == "." else rel.as_posix()


def package_of(path: Path, parsed: YamlComments) -> tuple[str, ...]:
    """Where a file's keys land: its ``# @package`` (``_global_`` = the root), else its group path."""
    package = parsed.package if parsed.package is not None else _group_of(path).replace("/", ".")
    if package in ("_global_", ""):
        return ()
    return tuple(package.replace("/", ".").split("."))


def _defaults(path: Path) -> list:
    data = yaml.safe_load(path.read_text()) or {}
    return list(data.get("defaults") or []) if isinstance(data, dict) else []


def _group_path(current: Path, group: str) -> str:
    """A defaults-list group name made absolute (relative names are relative to the file's own group)."""
    if group.startswith("/"):
        return group.lstrip("/")
    own = _group_of(current)
    return f"{own}/{group}" if own else group


def config_files(config_name: str, overrides: Iterable[str] = ()) -> list[Path]:
    """The YAML files a composition of ``config_name`` reads, dependencies first, the main config last.

    ``overrides`` are group choices (``crl=er``); ``hydra/*`` groups are ignored.
    """
    choices = {}
    for item in overrides:
        group, _, option = item.partition("=")
        choices[group.lstrip("+").strip()] = option.strip()
    files: list[Path] = []
    _walk(config_dir() / f"{config_name}.yaml", choices, files)
    return files


def _walk(path: Path, outer: dict[str, str], files: list[Path]) -> None:
    if not path.exists():
        raise FileNotFoundError(f"config file {path} (named in a defaults list) does not exist")
    entries = _defaults(path)
    chosen = dict(outer)
    for entry in entries:  # this file's overrides apply to everything it includes; outer ones win
        if isinstance(entry, dict):
            for name, option in entry.items():
                if str(name).startswith("override "):
                    chosen.setdefault(_group_path(path, str(name)[len("override ") :].strip()), str(option))
    for entry in entries:
        if isinstance(entry, str):
            if entry != "_self_":
                _walk(path.parent / f"{entry}.yaml", chosen, files)
            continue
        for key, option in entry.items():
            name = str(key)
            if name.startswith("override ") or option is None:
                continue
            group = _group_path(path, name)
            if group.startswith("hydra"):
                continue
            _walk(config_dir() / group / f"{chosen.get(group, option)}.yaml", chosen, files)
    if path not in files:
        files.append(path)


def comment_map(files: Iterable[Path]) -> dict[str, str]:
    """Dotted key → comment over ``files`` (in composition order): a later file's comment replaces an earlier
    one, as its value does; a key a later file sets without a comment keeps the earlier comment."""
    out: dict[str, str] = {}
    for path in files:
        parsed = parse_yaml_comments(path.read_text())
        prefix = package_of(path, parsed)
        for key, comment in parsed.comments.items():
            out[".".join((*prefix, *key))] = comment
    return out


# ------------------------------------------------------------------------------------ rendering
def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaf key → value of a nested mapping (lists, empty mappings and :data:`LEAF_MAPPINGS` are leaves)."""
    if not isinstance(node, dict) or not node or prefix in LEAF_MAPPINGS:
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def format_value(value: Any) -> str:
    """A value as YAML flow text (interpolations unresolved)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _code(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def _prose(text: str) -> str:
    """Comment text for a table cell: ``|`` escaped, ``<``/``>`` escaped outside code spans."""
    parts = text.replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def section_of(key: str, sections: Iterable[str] = SECTIONS) -> str:
    """The longest section that prefixes ``key`` (else the key's top-level name)."""
    best = key.split(".", maxsplit=1)[0]
    for section in sections:
        if (key == section or key.startswith(section + ".")) and len(section) >= len(best):
            best = section
    return best


def _composed(config_name: str, overrides: list[str] | None = None) -> dict[str, Any]:
    cfg = compose(config_name, overrides or [])
    data = OmegaConf.to_container(cfg, resolve=False)
    data.pop("hydra", None)
    return data


def main_tables(names: tuple[str, ...] = MAIN_CONFIGS) -> list[str]:
    values = [leaves(_composed(name)) for name in names]
    comments: dict[str, str] = {}
    for name in names:
        for key, text in comment_map(config_files(name)).items():
            comments.setdefault(key, text)
    keys = list(dict.fromkeys(k for v in values for k in v))
    order = list(SECTIONS) + sorted({section_of(k) for k in keys} - set(SECTIONS))
    lines: list[str] = []
    for section in order:
        rows = [k for k in keys if section_of(k) == section]
        if not rows:
            continue
        lines += ["", f"### `{section}`", ""]
        lines.append("| key | " + " | ".join(f"`{n}`" for n in names) + " | comment |")
        lines.append("|---|" + "---|" * len(names) + "---|")
        for key in rows:
            cells = [_code(format_value(v[key])) if key in v else "—" for v in values]
            lines.append(f"| {_code(key)} | " + " | ".join(cells) + f" | {_prose(comments.get(key, ''))} |")
    return lines


def method_tables(base: str = MAIN_CONFIGS[0]) -> list[str]:
    lines: list[str] = []
    for path in sorted((config_dir() / "crl").glob("*.yaml")):
        name = path.stem
        files = [f for f in config_files(base, [f"crl={name}"]) if _group_of(f) == "crl"]
        own: list[str] = []
        for f in files:
            own += [".".join(("crl", *k)) for k in parse_yaml_comments(f.read_text()).keys]
        crl = leaves(_composed(base, [f"crl={name}"])["crl"], "crl")
        comments = comment_map(files)
        header = parse_yaml_comments(path.read_text()).header
        lines += ["", f"### `crl={name}` (`configs/crl/{path.name}`)", ""]
        if header:
            lines += [_prose(header), ""]
        lines += ["| key | default | comment |", "|---|---|---|"]
        for key in [k for k in crl if k in set(own)]:
            lines.append(f"| {_code(key)} | {_code(format_value(crl[key]))} | {_prose(comments.get(key, ''))} |")
    return lines


def main_config_list() -> list[str]:
    lines = ["| config | description |", "|---|---|"]
    root = config_dir()
    for path in sorted(root.glob("*.yaml")) + sorted((root / "crl_experiment").glob("*.yaml")):
        name = path.relative_to(root).with_suffix("").as_posix()
        lines.append(f"| `{name}` | {_prose(parse_yaml_comments(path.read_text()).header)} |")
    return lines


def generate() -> str:
    """The whole reference as markdown text."""
    lines = [
        "# Configuration reference",
        "",
        f"Generated from `configs/` by `{GENERATE_COMMAND}`; do not edit it by hand "
        "(`tests/docs/test_docs.py` fails when it is stale: regenerate it after changing a config). "
        "Values are shown as written, before interpolation (`${...}` is resolved when a run starts; "
        "`${repo_path:}` is the checkout). Comments are the YAML files' own comments. Override any key on the "
        "command line (`vlacrl-train actor.optim.lr=1e-5`; a key that is not in the config needs a `+`).",
        "",
        "## Main configs",
        "",
        "Pick one with `--config-name NAME` (`vlacrl-train`, `vlacrl-eval`, `vlacrl-crl`; default `cpu_tiny`).",
        "",
        *main_config_list(),
        "",
        "## Keys of the main configs",
        "",
        "`—`: the key is not in that config. The other `crl_experiment/` configs differ from the LIBERO-Spatial "
        "one in the suite, the SFT checkpoint, `actor.model.unnorm_key`, `env.fixed_task_ids`, "
        "`runner.max_epochs` / `save_interval` and `algorithm.eval_rollout_epoch` (see their files).",
        *main_tables(),
        "",
        "## Continual-learning methods (`crl=<method>`)",
        "",
        "The keys each `configs/crl/` file adds under `crl.` (select with `crl=<method>`; defaults as composed "
        f"with `{MAIN_CONFIGS[0]}`). The sequence keys (`crl.tasks`, `crl.eval_tasks`, ...) are in the `crl` "
        "table above; see docs/continual.md and docs/methods/.",
        *method_tables(),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from vlacrl.paths import repo_root

    parser = argparse.ArgumentParser(prog="python -m vlacrl.config.reference", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=repo_root() / "docs" / "configuration.md", help="markdown file")
    parser.add_argument("--check", action="store_true", help="exit 1 when --out differs from the generated text")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.out.read_text() if args.out.exists() else None
        if current != text:
            sys.stderr.write(f"{args.out} is stale; regenerate it with: {GENERATE_COMMAND}\n")
            return 1
        sys.stdout.write(f"{args.out} is up to date\n")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.write(f"wrote {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
