"""Registry of encoder and scanner architectures, built by name from a config."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

ENCODERS: dict[str, Callable[..., nn.Module]] = {}
SCANNERS: dict[str, Callable[..., nn.Module]] = {}


def register_encoder(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in ENCODERS:
            raise ValueError(f"encoder {name!r} registered twice")
        ENCODERS[name] = fn
        return fn

    return deco


def register_scanner(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in SCANNERS:
            raise ValueError(f"scanner {name!r} registered twice")
        SCANNERS[name] = fn
        return fn

    return deco


def create_encoder(name: str, **kwargs: object) -> nn.Module:
    if name not in ENCODERS:
        raise KeyError(f"unknown encoder {name!r}; registered: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name](**kwargs)


def create_scanner(name: str, **kwargs: object) -> nn.Module:
    if name not in SCANNERS:
        raise KeyError(f"unknown scanner {name!r}; registered: {', '.join(sorted(SCANNERS))}")
    return SCANNERS[name](**kwargs)
