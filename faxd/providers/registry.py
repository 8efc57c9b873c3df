"""Which provider packages exist, and how the configured ones are built.

Why a registry: the daemon, the CLI and ``check-config --online`` must build the
configured providers without importing every provider's HTTP client at start,
and without an ``if name == "voipms"`` in policy code.  Each provider package
exposes, in its ``provider`` module::

    def configured(config: Config) -> bool             # its section is present
    def make_inbound(config: Config, **kw) -> InboundProvider    # receive-capable only
    def make_outbound(config: Config, **kw) -> OutboundProvider  # send-capable only
    def make_checker(config: Config) -> OnlineCheck

``kw`` carries shared parts (``clock=``) so tests can inject them.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from faxd.providers.base import PROVIDER_NAMES

if TYPE_CHECKING:
    from faxd.config import Config
    from faxd.providers.base import InboundProvider, OnlineCheck, OutboundProvider

#: Providers that have an inbound half (faxnummer.de's API cannot receive).
RECEIVING = ("faxage", "voipms", "ifax")
#: Providers that have an outbound half.
SENDING = ("faxage", "voipms", "ifax", "faxnummer")


def provider_module(name: str) -> ModuleType:
    """``faxd.providers.<name>.provider``, imported on first use."""
    if name not in PROVIDER_NAMES:
        raise ValueError(f"unknown provider {name!r}; faxd knows {', '.join(PROVIDER_NAMES)}")
    return importlib.import_module(f"faxd.providers.{name}.provider")


def configured(config: Config) -> tuple[str, ...]:
    """The providers whose section is in the config file, in PROVIDER_NAMES order."""
    return tuple(name for name in PROVIDER_NAMES if getattr(config, name, None) is not None)


def make_inbound(config: Config, name: str, **kw: Any) -> InboundProvider:
    """The inbound half of provider ``name`` as configured."""
    if name not in RECEIVING:
        raise ValueError(f"{name} cannot receive faxes: its API has no receive functions")
    return cast("InboundProvider", provider_module(name).make_inbound(config, **kw))


def make_outbound(config: Config, name: str, **kw: Any) -> OutboundProvider:
    """The outbound half of provider ``name`` as configured."""
    return cast("OutboundProvider", provider_module(name).make_outbound(config, **kw))


def make_checker(config: Config, name: str) -> OnlineCheck:
    """What ``check-config --online`` calls for provider ``name``."""
    return cast("OnlineCheck", provider_module(name).make_checker(config))
