"""Errors raised only by the LIBERO layer (set-up and rendering); the shared env errors are in
:mod:`vlacrl.envs.errors`."""

from vlacrl.envs.errors import SimulatorUnavailableError


class LiberoSetupError(SimulatorUnavailableError):
    """LIBERO, its assets or its config cannot be found or written."""


class RenderBackendError(SimulatorUnavailableError):
    """No OpenGL backend (EGL / OSMesa) can render MuJoCo scenes on this machine."""
