"""faxd's configuration: one TOML file turned into frozen, checked settings.

``load_config()`` reads the file (``--config``, ``$FAXD_CONFIG`` or
``/etc/faxd/faxd.toml``), resolves paths and passwords and raises one
:class:`~faxd.errors.ConfigError` listing every problem, each naming file and
key.  The pieces live in small modules: ``model`` (the dataclasses), ``reader``
(typed, problem-collecting table access), ``secrets`` (password sources and
file modes), ``routes`` (routes and actions) and ``loader`` (the sections).
"""

from __future__ import annotations

from faxd.config.loader import DEFAULT_CONFIG_PATH, config_path, load_config, mask_url
from faxd.config.model import (
    NOTIFY_EVENTS,
    ActionSpec,
    CommandSpec,
    Config,
    DatabaseSettings,
    EmailSpec,
    FaxageSettings,
    FaxnummerSettings,
    FolderSpec,
    HttpSettings,
    IfaxSettings,
    InboundSettings,
    NotifySettings,
    OutboundSettings,
    PrintSpec,
    ProviderSettings,
    RetentionSettings,
    RouteSpec,
    SmtpSettings,
    VoipmsSettings,
)
from faxd.hours import Hours

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "NOTIFY_EVENTS",
    "ActionSpec",
    "CommandSpec",
    "Config",
    "DatabaseSettings",
    "EmailSpec",
    "FaxageSettings",
    "FaxnummerSettings",
    "FolderSpec",
    "Hours",
    "HttpSettings",
    "IfaxSettings",
    "InboundSettings",
    "NotifySettings",
    "OutboundSettings",
    "PrintSpec",
    "ProviderSettings",
    "RetentionSettings",
    "RouteSpec",
    "SmtpSettings",
    "VoipmsSettings",
    "config_path",
    "load_config",
    "mask_url",
]
