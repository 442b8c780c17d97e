"""Each role's home page: where signing in, the second factor and the landing page send a user."""

from __future__ import annotations

DASHBOARDS = {"patient": "/patient", "doctor": "/doctor", "carer": "/carer", "admin": "/admin"}
