"""Which store errors a retry resolves (the store is away or busy), for every store adapter.

A transient error never means the event is bad. The runner no longer needs this to decide what
to dead-letter (it dead-letters only undecodable events and broken rules and retries everything
else), but it says how a failure is reported and lets callers retry quietly.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

# SQLSTATEs a retry resolves: serialization failure and deadlock (PostgreSQL picks one
# victim of a lock cycle and aborts its transaction; the same work succeeds when re-run), and
# the server shutting down or starting up (class 57P: a restart, pg_terminate_backend).
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03"})
# MongoDB error labels the server or driver sets on errors a retry resolves.
_RETRYABLE_LABELS = ("TransientTransactionError", "RetryableWriteError", "RetryableError")


def is_transient(exc: BaseException) -> bool:
    """Whether re-running the same transaction can succeed: a lost or invalidated connection,
    a busy database, a deadlock victim, a serialization failure, a server restarting, or a
    MongoDB failover (``AutoReconnect``, ``NotPrimaryError``, ``ServerSelectionTimeoutError``,
    network and pool timeouts: every ``ConnectionFailure``)."""
    if isinstance(exc, OperationalError | OSError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return code in _RETRYABLE_SQLSTATES
    return _is_mongo_transient(exc)


def _is_mongo_transient(exc: BaseException) -> bool:
    try:
        from pymongo.errors import ConnectionFailure, PyMongoError
    except ImportError:  # pragma: no cover - pymongo comes with motor, a dependency
        return False
    if isinstance(exc, ConnectionFailure):
        return True
    return isinstance(exc, PyMongoError) and any(exc.has_error_label(x) for x in _RETRYABLE_LABELS)
