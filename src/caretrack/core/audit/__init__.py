"""The audit log: append-only, hash-chained. See service.py."""

from caretrack.core.audit.service import record, verify_chain

__all__ = ["record", "verify_chain"]
