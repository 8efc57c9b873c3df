"""after_delivery for VoIP.ms: delete, move to an archive folder (made if missing), or keep."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from voipms_helpers import settings_for

from faxd.errors import ConfigError, NotFoundError
from faxd.providers.base import Release
from faxd.providers.voipms import provider
from faxd.providers.voipms.client import VoipmsClient
from faxd.providers.voipms.sim import VoipmsSimulator

NOW = datetime.now(UTC)


def inbound(sim: VoipmsSimulator, client: VoipmsClient, **changes: Any) -> provider.VoipmsInbound:
    config: Any = SimpleNamespace(voipms=settings_for(sim, **changes))
    return provider.make_inbound(config, client=client)


def listed(source: provider.VoipmsInbound) -> set[str]:
    return {f.remote_id for batch in source.list_all(now=NOW) for f in batch.faxes}


def methods(sim: VoipmsSimulator) -> list[str]:
    return [method for method, _ in sim.requests]


def test_move_creates_the_missing_archive_folder_once_and_moves_there(
    voipms_client: VoipmsClient,
) -> None:
    with VoipmsSimulator(voipms_client.username, "Vp-api-S3cret-77q", archive=False) as sim:
        voipms_client.transport.base_url = sim.base_url
        faxes = sim.seed_inbound(3)
        source = inbound(sim, voipms_client, after_delivery="move", archive_folder="Delivered")
        assert source.capabilities.release is Release.MOVE
        source.release(faxes[0].remote_id)
        source.release(faxes[1].remote_id)
        archive = sim.folder_id("DELIVERED")
        assert archive is not None
        assert [f.moved_to for f in faxes] == [archive, archive, None]
        assert [f.released for f in faxes] == [True, True, False]
        assert not any(f.deleted for f in faxes)
        assert methods(sim) == [
            "getFaxFolders",
            "setFaxFolder",
            "getFaxFolders",
            "moveFaxMessage",
            "moveFaxMessage",
        ]
        # The moved faxes leave the listed folder; they are in the archive.
        assert listed(source) == {faxes[2].remote_id}
        (params,) = [p for m, p in sim.requests if m == "setFaxFolder"]
        assert params["name"] == "Delivered"


def test_move_uses_an_existing_archive_folder(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    (fax,) = voipms_sim.seed_inbound(1)
    source = inbound(voipms_sim, voipms_client, after_delivery="move")
    source.release(fax.remote_id)
    assert fax.moved_to == voipms_sim.folder_id("ARCHIVE")
    assert "setFaxFolder" not in methods(voipms_sim)


def test_moving_a_fax_that_is_gone_is_not_found(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    source = inbound(voipms_sim, voipms_client, after_delivery="move")
    with pytest.raises(NotFoundError):
        source.release("999999")


def test_delete_deletes_and_keep_leaves_the_fax(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    one, two = voipms_sim.seed_inbound(2)
    inbound(voipms_sim, voipms_client).release(one.remote_id)
    keep = inbound(voipms_sim, voipms_client, after_delivery="keep")
    assert keep.capabilities.release is Release.KEEP
    keep.release(two.remote_id)
    assert (one.deleted, two.released) == (True, False)
    assert methods(voipms_sim) == ["deleteFaxMessage"]


def test_release_runs_the_delete_check(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    one, two = voipms_sim.seed_inbound(2)
    voipms_sim.delete_check = lambda fax: "too early" if fax is two else None
    source = inbound(voipms_sim, voipms_client, after_delivery="move")
    source.release(one.remote_id)
    source.release(two.remote_id)
    assert voipms_sim.violations == ["too early"]


@pytest.mark.parametrize(
    "changes",
    [
        {"after_delivery": "shred"},
        {"after_delivery": "move", "archive_folder": "inbox"},
        {"timezone": "Mars/Olympus"},
    ],
)
def test_bad_settings_are_config_errors(voipms_sim: VoipmsSimulator, changes: Any) -> None:
    with pytest.raises(ConfigError):
        inbound(voipms_sim, VoipmsClient("u", "p-config", base_url=voipms_sim.base_url), **changes)
