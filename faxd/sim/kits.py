"""Every provider simulator started the same way, with the config section that points at it.

Why: ``faxd demo --provider NAME``, the benches and the end-to-end tests that
run once per provider must not each know four constructors and four sections.
A :class:`SimKit` knows, for one provider, how to start its simulator and how
to write the ``[provider]`` TOML section a config needs to talk to it.  Each
simulator has the same public shape (``seed_inbound``, ``inject``, ``jobs``,
``fail_numbers``, ``delete_check``/``violations`` where it receives).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faxd.clock import Clock, system_clock
from faxd.providers.registry import RECEIVING, SENDING

#: The VoIP.ms number the demo and tests send from (one of the simulated account's).
VOIPMS_FROM = "3035550100"


@dataclass(frozen=True)
class SimKit:
    """How to start one provider's simulator and configure faxd for it."""

    name: str
    label: str
    _factory: str  # "module:Class"
    _section: Callable[[Any], str]

    @property
    def receives(self) -> bool:
        return self.name in RECEIVING

    @property
    def sends(self) -> bool:
        return self.name in SENDING

    def start(
        self,
        *,
        seed: int = 0,
        settle_seconds: float = 1.0,
        latency: float = 0.0,
        clock: Clock = system_clock,
    ) -> Any:
        """A started simulator (stop it with ``.stop()``)."""
        module, _, cls = self._factory.partition(":")
        factory = getattr(importlib.import_module(module), cls)
        if self.name == "faxage":
            sim = factory(seed=seed, job_seconds=settle_seconds, latency=latency, clock=clock)
        else:
            sim = factory(seed=seed, settle_seconds=settle_seconds, latency=latency, clock=clock)
        return sim.start()

    def section(self, sim: Any, *, timeout: float = 10.0) -> str:
        """The TOML section that points faxd at ``sim``."""
        return self._section(sim) + f"timeout = {timeout:g}\n"


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _faxage(sim: Any) -> str:
    return (
        "[faxage]\n"
        f"username = {_q(sim.username)}\ncompany = {_q(sim.company)}\n"
        f"password = {_q(sim.password)}\nbase_url = {_q(sim.base_url)}\n"
    )


def _voipms(sim: Any) -> str:
    return (
        "[voipms]\n"
        f"username = {_q(sim.username)}\npassword = {_q(sim.password)}\n"
        f"base_url = {_q(sim.base_url)}\ntimezone = {_q(sim.zone.key)}\n"
        f'from_number = {_q(VOIPMS_FROM)}\nfrom_name = "faxd demo"\n'
    )


def _ifax(sim: Any) -> str:
    return (
        "[ifax]\n"
        f"access_token = {_q(sim.token)}\nbase_url = {_q(sim.base_url)}\n"
        'caller_id = "+13035550100"\n'
    )


def _faxnummer(sim: Any) -> str:
    return (
        "[faxnummer]\n"
        f"product_login = {_q(sim.login)}\nproduct_code = {_q(sim.code)}\n"
        f"base_url = {_q(sim.base_url)}\n"
        'source = "+49 30 1234567"\nsender = "faxd demo"\nstatus_email = "fax@example.com"\n'
    )


KITS: dict[str, SimKit] = {
    kit.name: kit
    for kit in (
        SimKit("faxage", "FAXAGE", "faxd.sim.server:FaxageSimulator", _faxage),
        SimKit("voipms", "VoIP.ms", "faxd.providers.voipms.sim:VoipmsSimulator", _voipms),
        SimKit("ifax", "iFax", "faxd.providers.ifax.sim:IfaxSimulator", _ifax),
        SimKit(
            "faxnummer",
            "faxnummer.de",
            "faxd.providers.faxnummer.sim:FaxnummerSimulator",
            _faxnummer,
        ),
    )
}
