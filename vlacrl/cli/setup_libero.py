"""``vlacrl-setup-libero``: write LIBERO's config.yaml and link its assets (idempotent)."""

from __future__ import annotations

import sys

from vlacrl.cli.common import OneLineParser
from vlacrl.envs.libero.errors import LiberoSetupError
from vlacrl.envs.libero.setup import ensure_libero_ready


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__)
    parser.add_argument("--config-dir", help="where config.yaml goes (default: $LIBERO_CONFIG_PATH or <repo>/LIBERO)")
    args = parser.parse_args(argv)
    try:
        paths = ensure_libero_ready(args.config_dir)
    except LiberoSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"LIBERO ready: config {paths.config_file}, assets {paths.assets}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
