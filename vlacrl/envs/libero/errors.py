"""Errors raised by the LIBERO layer, each with a message a researcher can act on."""


class LiberoSetupError(RuntimeError):
    """LIBERO, its assets or its config cannot be found or written."""


class RenderBackendError(RuntimeError):
    """No OpenGL backend (EGL / OSMesa) can render MuJoCo scenes on this machine."""


class EnvConfigError(ValueError):
    """Bad user input for an environment: unknown suite, task id out of range, bad sizes."""


class EnvWorkerError(RuntimeError):
    """A simulator sub-process failed; the message carries its env index and traceback."""

    def __init__(self, env_index: int, message: str):
        super().__init__(f"LIBERO env {env_index} failed: {message}")
        self.env_index = env_index
