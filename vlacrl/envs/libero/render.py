"""Choose, configure and probe the OpenGL backend that MuJoCo renders with.

Rules (applied before robosuite or LIBERO is imported in a process):

* an explicit ``MUJOCO_GL`` set by the user always wins;
* on a process that owns a CUDA device: EGL, on the EGL device that *is* that CUDA device
  (EGL enumerates devices in its own order, so the index is looked up via ``EGL_NV_device_cuda``);
* otherwise OSMesa (software rendering; ``apt-get install libosmesa6``).

Probes run in a subprocess with a timeout, so a broken driver can never hang the caller.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Sequence

from vlacrl.envs.libero.errors import RenderBackendError
from vlacrl.envs.sim_pool import apply_env  # noqa: F401 - part of this module's interface

logger = logging.getLogger(__name__)

BACKENDS = ("egl", "osmesa", "glfw")
EGL_CUDA_DEVICE_NV = 0x323A  # attribute of EGL_NV_device_cuda

_PROBE_SCRIPT = r"""
import mujoco, numpy as np
xml = ("<mujoco><worldbody><light pos='0 0 2'/><camera name='c' pos='0 -1 0' xyaxes='1 0 0 0 0 1'/>"
       "<geom type='sphere' size='.3' rgba='1 0 0 1'/></worldbody></mujoco>")
m = mujoco.MjModel.from_xml_string(xml); d = mujoco.MjData(m); mujoco.mj_forward(m, d)
r = mujoco.Renderer(m, 32, 32); r.update_scene(d, camera='c'); img = r.render()
assert img.shape == (32, 32, 3) and img[..., 0].max() > 0, "blank frame"
print("OK", mujoco.__version__)
"""


@dataclass(frozen=True)
class ProbeResult:
    backend: str
    ok: bool
    seconds: float
    detail: str


@dataclass(frozen=True)
class RenderSettings:
    """What a process was configured to render with."""

    backend: str
    egl_device_id: int | None
    explicit: bool  # True when the user's MUJOCO_GL was kept


def backend_env(backend: str) -> dict[str, str]:
    """Environment variables that select ``backend`` for MuJoCo and PyOpenGL."""
    if backend not in BACKENDS:
        raise RenderBackendError(f"unknown render backend {backend!r}; choose one of {BACKENDS}")
    env = {"MUJOCO_GL": backend}
    if backend in ("egl", "osmesa"):
        env["PYOPENGL_PLATFORM"] = backend
    return env


def egl_index_for_cuda_device(cuda_ordinal: int, egl_cuda_ids: Sequence[int | None]) -> int:
    """Index of the EGL device backed by CUDA device ``cuda_ordinal``.

    Args:
        cuda_ordinal: physical CUDA device number (as in an unrestricted ``nvidia-smi``).
        egl_cuda_ids: for each EGL device in EGL's order, the CUDA ordinal it reports via
            ``EGL_CUDA_DEVICE_NV``, or None for non-NVIDIA devices (e.g. Mesa's software device).
    """
    for egl_index, cuda_id in enumerate(egl_cuda_ids):
        if cuda_id == cuda_ordinal:
            return egl_index
    raise RenderBackendError(
        f"no EGL device is backed by CUDA device {cuda_ordinal} (EGL devices report CUDA ids "
        f"{list(egl_cuda_ids)}); check the NVIDIA EGL vendor file "
        "(/usr/share/glvnd/egl_vendor.d/10_nvidia.json) and NVIDIA_DRIVER_CAPABILITIES=all"
    )


def physical_cuda_ordinal(local_device: int, visible: str | None) -> int:
    """Map a process-local CUDA index to the physical one through ``CUDA_VISIBLE_DEVICES``."""
    if not visible:
        return local_device
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if local_device >= len(entries):
        raise RenderBackendError(f"CUDA device {local_device} is not in CUDA_VISIBLE_DEVICES={visible!r}")
    entry = entries[local_device]
    if not entry.isdigit():
        raise RenderBackendError(f"CUDA_VISIBLE_DEVICES entry {entry!r} is a UUID; set MUJOCO_EGL_DEVICE_ID explicitly")
    return int(entry)


def query_egl_cuda_ids() -> list[int | None]:  # pragma: no cover - needs NVIDIA EGL
    """CUDA ordinal of every EGL device (None where the device is not an NVIDIA GPU)."""
    from mujoco.egl import egl_ext
    from OpenGL import EGL  # only on GPU hosts, after PYOPENGL_PLATFORM=egl

    ids: list[int | None] = []
    for device in egl_ext.eglQueryDevicesEXT():
        value = (EGL.EGLAttrib * 1)()
        ok = egl_ext.eglQueryDeviceAttribEXT(device, EGL_CUDA_DEVICE_NV, value)
        ids.append(int(value[0]) if ok else None)
    return ids


def configure_rendering(cuda_device: int | None = None, environ: dict | None = None) -> RenderSettings:
    """Set ``MUJOCO_GL``/``PYOPENGL_PLATFORM`` (and the EGL device) for this process.

    Args:
        cuda_device: the process-local CUDA index this process uses, or None on CPU.
        environ: the environment to edit (default ``os.environ``; tests pass a dict).
    """
    env = os.environ if environ is None else environ
    explicit = env.get("MUJOCO_GL", "").strip().lower()
    if explicit:
        if explicit in ("egl", "osmesa"):
            env.setdefault("PYOPENGL_PLATFORM", explicit)
        egl_id = env.get("MUJOCO_EGL_DEVICE_ID")
        return RenderSettings(explicit, int(egl_id) if egl_id and egl_id.isdigit() else None, True)
    if cuda_device is None:
        env.update(backend_env("osmesa"))
        return RenderSettings("osmesa", None, False)
    env.update(backend_env("egl"))
    if env.get("MUJOCO_EGL_DEVICE_ID"):
        return RenderSettings("egl", int(env["MUJOCO_EGL_DEVICE_ID"]), True)
    physical = physical_cuda_ordinal(cuda_device, env.get("CUDA_VISIBLE_DEVICES"))
    egl_index = egl_index_for_cuda_device(physical, query_egl_cuda_ids())
    env["MUJOCO_EGL_DEVICE_ID"] = str(egl_index)
    # robosuite insists that MUJOCO_EGL_DEVICE_ID appears in CUDA_VISIBLE_DEVICES; env processes
    # never use CUDA themselves, so the restriction is dropped there.
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return RenderSettings("egl", egl_index, False)


def render_env_for_subprocess(cuda_device: int | None = None) -> dict[str, str | None]:
    """The environment changes that make a child process render as :func:`configure_rendering` says.

    Computed on a copy of this process's environment, which stays untouched. A value of None means
    "remove this variable" (``CUDA_VISIBLE_DEVICES`` for EGL env processes).
    """
    before = dict(os.environ)
    after = dict(before)
    configure_rendering(cuda_device, after)
    keys = ("MUJOCO_GL", "PYOPENGL_PLATFORM", "MUJOCO_EGL_DEVICE_ID", "CUDA_VISIBLE_DEVICES")
    return {k: after.get(k) for k in keys if after.get(k) != before.get(k)}


def probe_backend(backend: str, timeout_s: float = 60.0, extra_env: dict | None = None) -> ProbeResult:
    """Render one small MuJoCo frame with ``backend`` in a fresh subprocess.

    ``extra_env`` holds environment changes for the probe (None deletes a variable).
    """
    env = {**os.environ, **backend_env(backend)}
    apply_env(extra_env or {}, env)
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(backend, False, time.monotonic() - start, f"timed out after {timeout_s:.0f}s")
    seconds = time.monotonic() - start
    if proc.returncode == 0 and "OK" in proc.stdout:
        return ProbeResult(backend, True, seconds, proc.stdout.strip())
    tail = (proc.stderr.strip().splitlines() or ["exit code %d" % proc.returncode])[-1]
    return ProbeResult(backend, False, seconds, tail)


_VERIFIED: dict[str, ProbeResult] = {}


def require_working_backend(backend: str | None = None, extra_env: dict | None = None) -> ProbeResult:
    """Probe a backend once per process (and EGL device); raise a clear error if it cannot render."""
    backend = (backend or os.environ.get("MUJOCO_GL") or "osmesa").lower()
    key = f"{backend}:{(extra_env or {}).get('MUJOCO_EGL_DEVICE_ID', '')}"
    if key not in _VERIFIED:
        _VERIFIED[key] = probe_backend(backend, extra_env=extra_env)
    result = _VERIFIED[key]
    if not result.ok:
        raise RenderBackendError(
            f"MuJoCo cannot render with MUJOCO_GL={backend}: {result.detail}. "
            "On a CPU machine: `apt-get install libosmesa6` and MUJOCO_GL=osmesa; on NVIDIA GPUs: "
            "MUJOCO_GL=egl with the NVIDIA EGL driver. `vlacrl-doctor` shows what works here."
        )
    return result
