"""The config layer's error type (a leaf module: every layer may raise or catch it)."""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the fix."""
