"""Fixtures the browser tests share with another folder's tests."""

from __future__ import annotations

from tests.consultations.conftest import scaled_out as scaled_out  # the app with two media workers
