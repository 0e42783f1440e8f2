"""Batch audit of sent logs: streaming readers, local and Dask runners, summary, HTML report,
what-if comparison. `smsguard audit` (app/commands/audit.py) is the front door; docs/audit.md
the manual."""
from app.audit.runner import AuditConfig, AuditError, run_audit

__all__ = ["AuditConfig", "AuditError", "run_audit"]
