"""Scene perturbations of the robustness suites: camera pose, lights, robot base position, per task.

The reference configures them in ``env.<split>.init_params`` with three per-task lists (one entry per task id
of the suite, ``null`` = unchanged), and applies them to the MuJoCo model of each LIBERO env
(``examples/embodiment/config/env/eval/libero_spatial_cam2.yaml``, ``LIBERO/libero/libero/envs/env_wrapper.py``
of continual-vla-rl):

* ``camera_overrides_per_task``: ``{camera name: {pos: [x, y, z], quat: [w, x, y, z]}}`` (world frame, metres);
* ``light_overrides_per_task``: ``{light name: {pos, dir, diffuse, specular: [3 floats], directional: bool}}``;
* ``robot_base_pos_override_per_task``: ``[dx, dy, dz]`` (an offset of the robot's root body, metres) or
  ``{offset: [dx, dy, dz]}`` or ``{pos: [x, y, z]}`` (absolute).

These are model parameters, not physics state, so the stored init states (joint positions, objects) stay valid.
LIBERO rebuilds the model at every ``reset()`` (robosuite's hard reset); :func:`apply` runs after each reset and
sets every value from the model's own default, so applying it twice gives the same model. (The reference adds the
base offset to the current position after ``reset()`` and again after ``set_init_state``, so its robot moved
twice the offset; docs/libero.md.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from vlacrl.envs.errors import EnvConfigError

KEYS = ("camera_overrides_per_task", "light_overrides_per_task", "robot_base_pos_override_per_task")
CAMERA_FIELDS = {"pos": 3, "quat": 4}
LIGHT_FIELDS = {"pos": 3, "dir": 3, "diffuse": 3, "specular": 3, "ambient": 3}


@dataclass(frozen=True)
class ScenePerturbation:
    """What one task's envs change in the model (picklable; sent to sim processes)."""

    cameras: Mapping[str, Mapping[str, tuple]] = field(default_factory=dict)
    lights: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    robot_base_offset: tuple[float, float, float] | None = None
    robot_base_pos: tuple[float, float, float] | None = None

    @property
    def empty(self) -> bool:
        return not (self.cameras or self.lights) and self.robot_base_offset is None and self.robot_base_pos is None


def _vector(value: Any, size: int, where: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != size:
        raise EnvConfigError(f"{where} must be a list of {size} numbers, got {value!r}")
    return out


def _named(entry: Any, where: str, kind: str, vectors: Mapping[str, int], flags: tuple[str, ...] = ()) -> dict:
    """``{name: {field: value}}`` of cameras or lights: ``vectors`` fields are lists of that many numbers, ``flags``
    booleans; anything else is an :class:`EnvConfigError` naming the key."""
    if not isinstance(entry, Mapping):
        raise EnvConfigError(f"{where} must map {kind} names to their fields, got {entry!r}")
    out = {}
    for name, spec in entry.items():
        fields = {}
        for key, value in (spec or {}).items():
            if key in flags:
                fields[key] = bool(value)
            elif key in vectors:
                fields[key] = _vector(value, vectors[key], f"{where}.{name}.{key}")
            else:
                allowed = [*sorted(vectors), *flags]
                raise EnvConfigError(f"{where}.{name}: unknown field {key!r}; use {allowed}")
        out[str(name)] = fields
    return out


def _robot(entry: Any, where: str) -> dict:
    if isinstance(entry, Mapping):
        if set(entry) == {"offset"}:
            return {"robot_base_offset": _vector(entry["offset"], 3, f"{where}.offset")}
        if set(entry) == {"pos"}:
            return {"robot_base_pos": _vector(entry["pos"], 3, f"{where}.pos")}
        raise EnvConfigError(f"{where} must be [dx, dy, dz], {{offset: [...]}} or {{pos: [...]}}, got {entry!r}")
    return {"robot_base_offset": _vector(entry, 3, where)}


def per_task(init_params: Mapping[str, Any] | None, num_tasks: int) -> tuple[ScenePerturbation, ...]:
    """One :class:`ScenePerturbation` per task id from ``init_params``' per-task lists (checked here, before any
    worker starts); () when none is set. A list shorter than the suite leaves the remaining tasks unchanged, as
    the reference."""
    init_params = init_params or {}
    if not any(init_params.get(k) for k in KEYS):
        return ()
    parsed: list[dict] = [{} for _ in range(num_tasks)]
    readers = {
        KEYS[0]: lambda e, w: {"cameras": _named(e, w, "camera", CAMERA_FIELDS)},
        KEYS[1]: lambda e, w: {"lights": _named(e, w, "light", LIGHT_FIELDS, ("directional",))},
        KEYS[2]: _robot,
    }
    for key, read in readers.items():
        entries = init_params.get(key) or []
        if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
            raise EnvConfigError(f"init_params.{key} must be a list with one entry per task, got {entries!r}")
        if len(entries) > num_tasks:
            raise EnvConfigError(f"init_params.{key} has {len(entries)} entries for a suite of {num_tasks} tasks")
        for task_id, entry in enumerate(entries):
            if entry is not None:
                parsed[task_id].update(read(entry, f"init_params.{key}[{task_id}]"))
    return tuple(ScenePerturbation(**p) for p in parsed)


def apply(env: Any, perturbation: ScenePerturbation | None, defaults: dict) -> None:
    """Set ``perturbation`` on robosuite env ``env``'s model (after ``reset()``), then ``sim.forward()``.

    ``defaults`` caches the model's unperturbed robot base position across calls (pass the same dict for one
    env), so the offset is added to the default, never to an already moved base. Unknown camera or light names
    raise :class:`EnvConfigError`.
    """
    if perturbation is None or perturbation.empty:
        return
    model = env.sim.model
    for camera, spec in perturbation.cameras.items():
        index = _index(model.camera_name2id, camera, "camera")
        for key, value in spec.items():
            getattr(model, f"cam_{key}")[index] = np.asarray(value)
    for light, spec in perturbation.lights.items():
        index = _index(model.light_name2id, light, "light")
        for key, value in spec.items():
            getattr(model, f"light_{key}")[index] = value if key == "directional" else np.asarray(value)
    if perturbation.robot_base_offset is not None or perturbation.robot_base_pos is not None:
        body = model.body_name2id(env.robots[0].robot_model.root_body)
        default = defaults.setdefault("robot_base_pos", model.body_pos[body].copy())
        if perturbation.robot_base_pos is not None:
            model.body_pos[body] = np.asarray(perturbation.robot_base_pos)
        else:
            model.body_pos[body] = default + np.asarray(perturbation.robot_base_offset)
    env.sim.forward()


def _index(lookup, name: str, kind: str) -> int:
    try:
        return int(lookup(name))
    except (ValueError, KeyError) as exc:
        raise EnvConfigError(f"the LIBERO scene has no {kind} named {name!r}") from exc
