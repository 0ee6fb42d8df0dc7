"""The policy family a config names, for validation (``vlacrl.models.families``)."""

from __future__ import annotations

from typing import Any, Mapping

from vlacrl.config.errors import ConfigError


def policy_family(cfg: Mapping[str, Any]):
    """The config's :class:`~vlacrl.models.families.PolicyFamily`; an unknown ``actor.model.model_name`` is a
    :class:`ConfigError`."""
    from vlacrl.models.errors import ModelPathError
    from vlacrl.models.families import family_of

    try:
        return family_of(cfg)
    except ModelPathError as exc:
        raise ConfigError(str(exc)) from None
