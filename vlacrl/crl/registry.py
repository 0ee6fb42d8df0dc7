"""Method registry: ``crl.method=<name>`` picks a class registered here."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from vlacrl.crl.base import CRLMethod
from vlacrl.crl.params import check_method_keys

METHODS: dict[str, type[CRLMethod]] = {}


class UnknownMethodError(ValueError):
    """``crl.method`` names no registered method."""


def register(name: str) -> Callable[[type[CRLMethod]], type[CRLMethod]]:
    """Class decorator: ``@register("ewc")``."""

    def wrap(cls: type[CRLMethod]) -> type[CRLMethod]:
        if name in METHODS:
            raise ValueError(f"method {name!r} registered twice")
        cls.name = name
        METHODS[name] = cls
        return cls

    return wrap


def method_names() -> list[str]:
    _import_builtin_methods()
    return sorted(METHODS)


def build_method(cfg: Mapping[str, Any]) -> CRLMethod:
    """The method object for ``cfg["crl"]["method"]``; a config without a ``crl`` section trains plainly."""
    if not cfg.get("crl"):
        return CRLMethod(cfg)
    _import_builtin_methods()
    name = str(cfg["crl"].get("method", "seq_ft"))
    if name not in METHODS:
        raise UnknownMethodError(f"unknown crl.method {name!r}; choose one of {sorted(METHODS)}")
    check_method_keys(name, cfg["crl"])
    return METHODS[name](cfg)


def _import_builtin_methods() -> None:
    """Import every module of ``vlacrl.crl`` so their ``@register`` decorators run."""
    import importlib
    import pkgutil

    import vlacrl.crl as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in ("base", "registry"):
            importlib.import_module(f"vlacrl.crl.{info.name}")
