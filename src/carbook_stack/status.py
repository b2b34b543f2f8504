"""What `stack status` and `stack start` report: each part's health, and the URLs and keys."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

__all__ = ["PartStatus", "StackInfo", "StackStatus"]


class PartStatus(BaseModel):
    name: str
    running: bool
    healthy: bool
    url: str
    pid: int | None = None
    log: Path | None = None
    detail: str = ""


class StackStatus(BaseModel):
    parts: tuple[PartStatus, ...]
    #: The configuration file in force (None for a stack built in code, as tests do).
    config_file: Path | None = None
    #: config.toml keys changed since the running stack started (`stack restart` applies them).
    changed: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return all(p.healthy for p in self.parts)

    @property
    def running(self) -> bool:
        return any(p.running for p in self.parts)


class StackInfo(BaseModel):
    """What ``supabase status`` prints."""

    api_url: str
    rest_url: str
    auth_url: str
    storage_url: str
    db_url: str
    publishable_key: str
    secret_key: str
    jwt_secret: str
    anon_key: str
    service_role_key: str
    #: Seconds `start` took, by its own measurement (0 when it was already running).
    started_in: float = 0.0
    fresh_database: bool = False
    #: Migrations not yet applied to an existing database (`carbook db migrate` applies them).
    pending_migrations: int = 0
