"""PostgreSQL pool sizes come from the environment and are refused clearly when malformed."""

from __future__ import annotations

import pytest
from sqlalchemy.pool import QueuePool

from mesh.db import POOL_SIZE_ENV, make_engine, pool_setting


class TestPoolSettings:
    def test_unset_or_blank_takes_the_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("PM_TEST_POOL", raising=False)
        assert pool_setting("PM_TEST_POOL", 10, least=1) == 10
        monkeypatch.setenv("PM_TEST_POOL", "  ")
        assert pool_setting("PM_TEST_POOL", 10, least=1) == 10

    def test_a_whole_number_is_taken(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PM_TEST_POOL", "3")
        assert pool_setting("PM_TEST_POOL", 10, least=1) == 3

    @pytest.mark.parametrize(
        ("raw", "words"), [("two", "whole number"), ("1.5", "whole number"), ("0", "at least 1")]
    )
    def test_a_malformed_value_is_refused_in_words(
        self, monkeypatch: pytest.MonkeyPatch, raw: str, words: str
    ) -> None:
        monkeypatch.setenv("PM_TEST_POOL", raw)
        with pytest.raises(ValueError, match=words):
            pool_setting("PM_TEST_POOL", 10, least=1)

    def test_the_engine_uses_it(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(POOL_SIZE_ENV, "3")
        engine = make_engine("postgresql://postgres@127.0.0.1:1/none")
        pool = engine.sync_engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == 3
