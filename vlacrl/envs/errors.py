"""Errors of the env layer that every simulator shares, each with a message a researcher can act on."""


class SimulatorUnavailableError(RuntimeError):
    """A simulator cannot run on this machine: a missing install, missing assets, no working renderer."""


class EnvConfigError(ValueError):
    """Bad user input for an environment: unknown simulator or suite, task id out of range, bad sizes."""


class EnvWorkerError(RuntimeError):
    """A simulator failed; the message names the simulator, the env index and carries the cause."""

    def __init__(self, env_index: int, message: str, simulator: str = ""):
        super().__init__(f"{simulator + ' ' if simulator else ''}env {env_index} failed: {message}")
        self.env_index = env_index
        self.simulator = simulator
