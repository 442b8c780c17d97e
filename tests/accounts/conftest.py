"""Fixtures the account tests share with another folder's tests."""

from __future__ import annotations

from tests.realtime.conftest import private_redis as private_redis  # a redis-server to stop and start
