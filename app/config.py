"""Settings: single-machine defaults, overridable by SMSGUARD_* environment variables."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_NAME = "smsguard-zh-en"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"SMSGUARD_{name}", default)


@dataclass(frozen=True)
class Settings:
    instance_dir: Path = PROJECT_ROOT / "instance"
    database_url: str = ""
    rules_dir: Path = PROJECT_ROOT / "rules"
    model_dir: Path | None = PROJECT_ROOT / "models" / DEFAULT_MODEL_NAME
    bind: str = "127.0.0.1:8000"
    workers: int = 2
    max_body_bytes: int = 64 * 1024
    max_sms_chars: int = 1000
    signature_tolerance_s: int = 300
    watch_rules: bool = True
    log_level: str = "INFO"
    secret_key: str = field(default="", repr=False)
    presend_fail_mode: str = "closed"
    # per-key request rate limits (app/api/ratelimit.py): requests per second per API key,
    # 0 = off; the burst a key may send at once (0 = one second's worth); per-role overrides
    # "reviewer=50,admin=200" (each role=rate or role=rate/burst)
    rate_limit_per_key: float = 3000.0
    rate_limit_burst: float = 0.0
    rate_limit_roles: str = ""
    # reviewer sign-in (app/web/auth.py, docs/operations.md section 8): after login_max_failures
    # failed sign-ins for one username, or login_addr_max_failures from one client address, within
    # login_window_s seconds, further attempts for that username / from that address are refused
    # (429 + Retry-After, no password hashing) for login_lockout_s seconds (0 = that limit off);
    # a successful sign-in clears the username's count. At most login_hash_concurrency password
    # verifications run at once per worker process; another attempt meanwhile is a 503 at once.
    # login_proxy_hops: reverse proxies in front that append to X-Forwarded-For (nginx: 1); 0
    # takes the connection's address (X-Forwarded-For ignored).
    login_max_failures: int = 5
    login_addr_max_failures: int = 20
    login_window_s: int = 900
    login_lockout_s: int = 900
    login_hash_concurrency: int = 1
    login_proxy_hops: int = 0
    # reviewer session cookies: valid for session_lifetime_s from sign-in (not renewed by use);
    # session_cookie_secure sets the cookie's Secure flag (serve the pages over HTTPS then)
    session_lifetime_s: int = 12 * 3600
    session_cookie_secure: bool = False
    # the review workbench (docs/review.md): opening a pending item claims it for this reviewer
    # for claim_minutes (renewed each time they open it again; released on decision)
    claim_minutes: int = 10
    # the record of checks (docs/checks.md): every pre-send check and /v1/moderate call is
    # recorded (check_record; 0 turns it off) with its text as check_text says: full, masked
    # (digits and contact ids replaced, same length) or none; records older than
    # check_retention_days are deleted by `smsguard prune`; at most check_queue_max records wait
    # in memory per worker for the background writer (more are dropped and counted)
    check_record: bool = True
    check_text: str = "full"
    check_retention_days: int = 30
    check_queue_max: int = 20000

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        instance = Path(_env("INSTANCE_DIR", str(cls.instance_dir)))
        model_env = _env("MODEL_DIR")
        values = dict(
            instance_dir=instance,
            database_url=_env("DATABASE_URL", "") or "",
            rules_dir=Path(_env("RULES_DIR", str(cls.rules_dir))),
            model_dir=(None if model_env in ("", "none") else Path(model_env)) if model_env is not None else cls.model_dir,
            bind=_env("BIND", cls.bind),
            workers=int(_env("WORKERS", str(cls.workers))),
            max_body_bytes=int(_env("MAX_BODY_BYTES", str(cls.max_body_bytes))),
            max_sms_chars=int(_env("MAX_SMS_CHARS", str(cls.max_sms_chars))),
            signature_tolerance_s=int(_env("SIGNATURE_TOLERANCE_S", str(cls.signature_tolerance_s))),
            watch_rules=_env("WATCH_RULES", "1") not in ("0", "false", "no"),
            log_level=_env("LOG_LEVEL", cls.log_level),
            secret_key=_env("SECRET_KEY", "") or "",
            presend_fail_mode=_env("PRESEND_FAIL_MODE", cls.presend_fail_mode),
            rate_limit_per_key=float(_env("RATE_LIMIT_PER_KEY", str(cls.rate_limit_per_key))),
            rate_limit_burst=float(_env("RATE_LIMIT_BURST", str(cls.rate_limit_burst))),
            rate_limit_roles=_env("RATE_LIMIT_ROLES", cls.rate_limit_roles) or "",
            login_max_failures=int(_env("LOGIN_MAX_FAILURES", str(cls.login_max_failures))),
            login_addr_max_failures=int(_env("LOGIN_ADDR_MAX_FAILURES", str(cls.login_addr_max_failures))),
            login_window_s=int(_env("LOGIN_WINDOW_S", str(cls.login_window_s))),
            login_lockout_s=int(_env("LOGIN_LOCKOUT_S", str(cls.login_lockout_s))),
            login_hash_concurrency=int(_env("LOGIN_HASH_CONCURRENCY", str(cls.login_hash_concurrency))),
            login_proxy_hops=int(_env("LOGIN_PROXY_HOPS", str(cls.login_proxy_hops))),
            session_lifetime_s=int(_env("SESSION_LIFETIME_S", str(cls.session_lifetime_s))),
            session_cookie_secure=(_env("SESSION_COOKIE_SECURE", "0") or "0").lower() in ("1", "true", "yes", "on"),
            claim_minutes=int(_env("CLAIM_MINUTES", str(cls.claim_minutes))),
            check_record=(_env("CHECK_RECORD", "1") or "1").lower() not in ("0", "false", "no", "off"),
            check_text=(_env("CHECK_TEXT", cls.check_text) or cls.check_text).lower(),
            check_retention_days=int(_env("CHECK_RETENTION_DAYS", str(cls.check_retention_days))),
            check_queue_max=int(_env("CHECK_QUEUE_MAX", str(cls.check_queue_max))),
        )
        values.update(overrides)
        return cls(**values).resolved()

    def resolved(self) -> "Settings":
        """Fill the derived defaults: database under the instance folder, a persistent secret."""
        s = self
        if not s.database_url:
            s = replace(s, database_url=f"sqlite:///{Path(s.instance_dir).resolve() / 'smsguard.db'}")
        if not s.secret_key:
            s = replace(s, secret_key=_instance_secret(Path(s.instance_dir)))
        for prefix in ("postgresql://", "postgres://"):  # psycopg 3 is the driver we ship
            if s.database_url.startswith(prefix):
                s = replace(s, database_url="postgresql+psycopg://" + s.database_url[len(prefix):])
        if s.presend_fail_mode not in ("closed", "open"):
            raise ValueError("SMSGUARD_PRESEND_FAIL_MODE must be 'closed' or 'open'")
        s.rate_limit("tenant")  # ValueError on a malformed SMSGUARD_RATE_LIMIT_ROLES
        if s.check_text not in ("full", "masked", "none"):
            raise ValueError("SMSGUARD_CHECK_TEXT must be 'full', 'masked' or 'none'")
        if not 1 <= s.check_retention_days <= 3650:
            raise ValueError("SMSGUARD_CHECK_RETENTION_DAYS must be between 1 and 3650")
        if not 100 <= s.check_queue_max <= 1_000_000:
            raise ValueError("SMSGUARD_CHECK_QUEUE_MAX must be between 100 and 1000000")
        for name in ("login_max_failures", "login_addr_max_failures", "login_proxy_hops"):
            if getattr(s, name) < 0:
                raise ValueError(f"SMSGUARD_{name.upper()} must not be negative")
        for name in ("login_window_s", "login_lockout_s", "login_hash_concurrency", "session_lifetime_s",
                     "claim_minutes"):
            if getattr(s, name) < 1:
                raise ValueError(f"SMSGUARD_{name.upper()} must be at least 1")
        return s

    def rate_limit(self, role: str) -> tuple[float, float]:
        """(requests per second, burst) for a key of this role; rate 0 means no limit."""
        rate, burst = self.rate_limit_per_key, self.rate_limit_burst
        for item in filter(None, (x.strip() for x in self.rate_limit_roles.split(","))):
            name, sep, value = item.partition("=")
            try:
                r, _, b = value.partition("/")
                r, b = float(r), (float(b) if b else 0.0)
            except ValueError:
                r = b = -1.0
            if not sep or r < 0 or b < 0:
                raise ValueError(f"SMSGUARD_RATE_LIMIT_ROLES: {item!r} is not role=rate or role=rate/burst")
            if name.strip() == role:
                rate, burst = r, b
        if rate < 0 or burst < 0:
            raise ValueError("SMSGUARD_RATE_LIMIT_PER_KEY and SMSGUARD_RATE_LIMIT_BURST must not be negative")
        return rate, (burst or max(rate, 1.0))

    def public(self) -> dict:
        """The settings without secrets, for `smsguard config` and logs."""
        out = {}
        for f in fields(self):
            if f.name == "secret_key":
                continue
            v = getattr(self, f.name)
            out[f.name] = str(v) if isinstance(v, Path) else v
        if "@" in out["database_url"]:  # hide a password in the URL
            scheme, rest = out["database_url"].split("://", 1)
            out["database_url"] = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return out


def _instance_secret(instance_dir: Path) -> str:
    """A random secret kept in the instance folder so sessions survive restarts."""
    instance_dir.mkdir(parents=True, exist_ok=True)
    path = instance_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
