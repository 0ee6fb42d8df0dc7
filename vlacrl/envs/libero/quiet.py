"""Import notices of LIBERO's dependencies that say nothing about a run, silenced at their source.

gym prints a four-line "unmaintained since 2022" notice on import and robosuite three "No private macro file"
warnings, in every process that imports LIBERO (each env sub-process included). Before the first import,
:func:`silence_import_notices` gives gym an empty notice table and robosuite an empty private-macro module
(only when the user has no ``robosuite/macros_private.py`` of their own). ``VLACRL_VERBOSE=1`` keeps them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

VERBOSE_ENV = "VLACRL_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip() not in ("", "0", "false", "False")


def silence_import_notices() -> None:
    """Call before LIBERO (and so gym and robosuite) is first imported in this process; idempotent."""
    if verbose():
        return
    if "gym" not in sys.modules and "gym_notices.notices" not in sys.modules:
        notices = types.ModuleType("gym_notices.notices")
        notices.notices = {}
        package = types.ModuleType("gym_notices")
        package.notices = notices
        sys.modules["gym_notices"], sys.modules["gym_notices.notices"] = package, notices
    if "robosuite" not in sys.modules and "robosuite.macros_private" not in sys.modules:
        spec = importlib.util.find_spec("robosuite")
        location = Path(spec.origin).parent if spec and spec.origin else None
        if location is not None and not (location / "macros_private.py").exists():
            sys.modules["robosuite.macros_private"] = types.ModuleType("robosuite.macros_private")
