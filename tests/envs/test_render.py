"""Render-backend choice, EGL device mapping and the subprocess probes."""

import pytest

from vlacrl.envs.libero import render
from vlacrl.envs.libero.errors import RenderBackendError


def test_egl_index_follows_the_cuda_id_not_the_position():
    # EGL lists Mesa's software device first, then GPUs in an order unrelated to CUDA's.
    topology = [None, 2, 0, 3, 1]
    assert render.egl_index_for_cuda_device(0, topology) == 2
    assert render.egl_index_for_cuda_device(1, topology) == 4
    assert render.egl_index_for_cuda_device(3, topology) == 3
    with pytest.raises(RenderBackendError, match="CUDA device 5"):
        render.egl_index_for_cuda_device(5, topology)


def test_physical_ordinal_through_cuda_visible_devices():
    assert render.physical_cuda_ordinal(0, None) == 0
    assert render.physical_cuda_ordinal(1, "4,6") == 6
    with pytest.raises(RenderBackendError):
        render.physical_cuda_ordinal(2, "4,6")
    with pytest.raises(RenderBackendError, match="UUID"):
        render.physical_cuda_ordinal(0, "GPU-1234abcd")


def test_cpu_process_gets_osmesa():
    env = {}
    settings = render.configure_rendering(None, env)
    assert settings.backend == "osmesa" and not settings.explicit
    assert env["MUJOCO_GL"] == "osmesa" and env["PYOPENGL_PLATFORM"] == "osmesa"


def test_explicit_mujoco_gl_always_wins():
    env = {"MUJOCO_GL": "egl", "MUJOCO_EGL_DEVICE_ID": "3", "CUDA_VISIBLE_DEVICES": "3"}
    settings = render.configure_rendering(cuda_device=0, environ=env)
    assert settings == render.RenderSettings("egl", 3, True)
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and env["PYOPENGL_PLATFORM"] == "egl"


def test_gpu_process_maps_its_cuda_device_to_the_egl_index(monkeypatch):
    monkeypatch.setattr(render, "query_egl_cuda_ids", lambda: [None, 1, 0])  # a 2-GPU node's EGL view
    env = {"CUDA_VISIBLE_DEVICES": "1"}  # Ray gave this worker physical GPU 1
    settings = render.configure_rendering(cuda_device=0, environ=env)
    assert settings.backend == "egl" and settings.egl_device_id == 1
    assert env["MUJOCO_EGL_DEVICE_ID"] == "1" and "CUDA_VISIBLE_DEVICES" not in env


@pytest.mark.libero
def test_osmesa_probe_renders_here():
    result = render.probe_backend("osmesa", timeout_s=120)
    assert result.ok, result.detail


@pytest.mark.libero
def test_a_backend_that_cannot_render_gives_one_clear_error(monkeypatch):
    # GLFW needs a display; this machine has none, so the probe fails in its subprocess.
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(render, "_VERIFIED", {})
    with pytest.raises(RenderBackendError, match="MUJOCO_GL=glfw.*libosmesa6"):
        render.require_working_backend("glfw")


def test_unknown_backend_is_rejected():
    with pytest.raises(RenderBackendError, match="unknown render backend"):
        render.backend_env("vulkan")


def test_subprocess_render_env_leaves_this_process_alone(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    assert render.render_env_for_subprocess(None) == {"MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa"}
    assert "MUJOCO_GL" not in __import__("os").environ
    monkeypatch.setattr(render, "query_egl_cuda_ids", lambda: [2, 0, 1])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    changes = render.render_env_for_subprocess(0)
    assert changes == {"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "MUJOCO_EGL_DEVICE_ID": "1",
                       "CUDA_VISIBLE_DEVICES": None}  # fmt: skip
    child = {"CUDA_VISIBLE_DEVICES": "0"}
    render.apply_env(changes, child)
    assert child == {"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "MUJOCO_EGL_DEVICE_ID": "1"}
