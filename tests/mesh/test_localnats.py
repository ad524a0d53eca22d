"""The test and launcher nats-server: a picked port another process took in the meantime
is never mistaken for our own server (parallel test workers would share a bus)."""

from __future__ import annotations

import tempfile

import pytest

from mesh.localnats import PortTaken, child_process, local_nats, nats_command, wait_nats


class TestLocalNats:
    def test_our_server_is_recognised_by_its_name(self) -> None:
        with local_nats(streams=False) as url:
            assert url.startswith("nats://127.0.0.1:")

    def test_a_port_someone_else_answers_on_is_refused(self) -> None:
        with local_nats(streams=False) as url:
            port = int(url.rsplit(":", 1)[1])
            with (
                tempfile.TemporaryDirectory() as store,
                child_process(nats_command(port, store, ["--server_name", "late"])) as late,
                pytest.raises(PortTaken),
            ):
                wait_nats(port, "late", late)
