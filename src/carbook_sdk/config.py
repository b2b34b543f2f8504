"""Where carbook's SQL lives, and the local defaults from ``supabase/config.toml``."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from .env import ENV_VARS, WORKDIR_VARS
from .errors import ConfigurationError

__all__ = [
    "CONFIG_TABLE",
    "ENV_VARS",
    "WORKDIR_VARS",
    "BucketConfig",
    "ConfigKey",
    "LocalConfig",
    "StackState",
    "default_db_url",
    "find_project",
    "from_environment",
    "is_local_url",
    "load_local_config",
    "local_stack",
    "packaged_dir",
    "parse_size",
    "project_root",
    "read_stack_state",
    "resolve_db_url",
    "stack_state_file",
    "supabase_dir",
    "use_workdir",
]

#: The Supabase CLI's well-known local keys (public by design): the publishable and
#: secret keys today's ``supabase start`` prints, and the legacy anon/service_role JWTs
#: (HS256 with the well-known JWT secret) its gateway turns them into.
LOCAL_PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
LOCAL_SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
LOCAL_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5"
    "ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
LOCAL_SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIs"
    "ImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)


#: ``--workdir`` of the running command (the CLI sets it once per invocation).
_WORKDIR: ContextVar[Path | None] = ContextVar("carbook_workdir", default=None)


def use_workdir(workdir: Path | str | None) -> None:
    """Make ``workdir`` the project folder for what follows in this context (``--workdir``).

    Raises:
        ConfigurationError: the folder does not exist or holds no ``supabase/config.toml``.
    """
    if workdir is None:
        _WORKDIR.set(None)
        return
    _WORKDIR.set(_checked_workdir(Path(workdir), "--workdir"))


def _checked_workdir(folder: Path, source: str) -> Path:
    folder = folder.expanduser()
    if not folder.is_dir():
        raise ConfigurationError(f"{source} {folder} is not a folder")
    if not (folder / "supabase" / "config.toml").is_file():
        raise ConfigurationError(
            f"{source} {folder} is not a carbook project (no supabase/config.toml)",
            hint=f"run `carbook init --workdir {folder}`",
        )
    return folder.resolve()


def find_project(start: Path | None = None) -> Path | None:
    """The project folder, found as the Supabase CLI finds one: ``--workdir``, else
    ``CARBOOK_WORKDIR``/``SUPABASE_WORKDIR``, else the nearest folder from the current one
    upwards that holds ``supabase/config.toml``; None when there is none.

    Raises:
        ConfigurationError: a workdir that was given is not a project.
    """
    given = _WORKDIR.get()
    if given is not None:
        return given
    for var in WORKDIR_VARS:
        if os.environ.get(var):
            return _checked_workdir(Path(os.environ[var]), var)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "supabase" / "config.toml").is_file():
            return folder
    return None


def project_root() -> Path:
    """The project folder (see `find_project`); its ``.carbook/`` holds the stack's state.

    Raises:
        ConfigurationError: no project here.
    """
    root = find_project()
    if root is None:
        raise ConfigurationError(
            f"no carbook project here ({Path.cwd()}): no supabase/config.toml in this folder or above",
            hint="run `carbook init`, or pass --workdir",
        )
    return root


def packaged_dir() -> Path:
    """carbook's own ``supabase/`` files (migrations, rollbacks, seed, config.toml, tests,
    images): the copy inside an installed wheel, or the source tree's ``supabase/``.
    ``carbook init`` copies them into a project."""
    here = Path(__file__).resolve().parent
    for folder in (here / "_supabase", here.parents[1] / "supabase"):
        if (folder / "migrations").is_dir():
            return folder
    raise ConfigurationError("carbook's packaged supabase/ files are missing: reinstall carbook")


def supabase_dir() -> Path:
    """The ``supabase/`` folder in force: the project's (see `find_project`), else
    carbook's packaged one (its default config.toml and migrations).

    Raises:
        ConfigurationError: a workdir that was given is not a project.
    """
    root = find_project()
    return root / "supabase" if root is not None else packaged_dir()


_SIZE = re.compile(r"^\s*([0-9]+)\s*(B|KB|KIB|MB|MIB|GB|GIB)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1000, "KIB": 1024, "MB": 1000**2, "MIB": 1024**2, "GB": 1000**3, "GIB": 1024**3}


def parse_size(value: str | int) -> int:
    """Bytes in a Supabase config size such as ``"5MiB"`` or ``"50MB"``."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(value)
    if not m:
        raise ConfigurationError(f"not a size: {value!r} (expected e.g. 5MiB)")
    return int(m.group(1)) * _UNITS[(m.group(2) or "B").upper()]


class BucketConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    public: bool = False
    file_size_limit: int | None = None
    allowed_mime_types: tuple[str, ...] = ()


class LocalConfig(BaseModel):
    """The parts of ``supabase/config.toml`` carbook uses, with the Supabase CLI's defaults.

    The one declaration of each setting and its default; ``CONFIG_TABLE`` says which
    config.toml key sets it, and the stack's settings (``StackState``) inherit it.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    api_port: int = 54321
    db_port: int = 54322
    api_schemas: tuple[str, ...] = ("public",)
    api_extra_search_path: tuple[str, ...] = ("public", "extensions")
    api_max_rows: int = 1000
    jwt_expiry: int = 3600
    enable_signup: bool = True
    enable_confirmations: bool = False
    enable_anonymous_sign_ins: bool = False
    minimum_password_length: int = 6
    #: ``[auth] site_url``: where Auth's links lead by default, and a host they may lead to.
    site_url: str = "http://127.0.0.1:3000"
    #: ``[auth] additional_redirect_urls``: the other places a link may lead to (GoTrue's
    #: allow list: ``*`` stops at ``.`` and ``/``, ``**`` does not).
    additional_redirect_urls: tuple[str, ...] = ()
    storage_file_size_limit: int = 50 * 1024**2
    buckets: tuple[BucketConfig, ...] = ()
    #: ``[realtime] enabled``: whether the local stack runs its Realtime service.
    realtime_enabled: bool = True
    #: ``[auth] signing_keys_path``, resolved against the ``supabase/`` folder as the
    #: Supabase CLI does; None: the CLI's well-known local signing key.
    signing_keys_path: Path | None = None

    def bucket(self, name: str) -> BucketConfig:
        for b in self.buckets:
            if b.name == name:
                return b
        raise ConfigurationError(f"bucket {name!r} is not configured in supabase/config.toml")


def _buckets(table: dict[str, Any], _: Path) -> tuple[BucketConfig, ...]:
    return tuple(
        BucketConfig(
            name=name,
            public=bool(b.get("public", False)),
            file_size_limit=parse_size(b["file_size_limit"]) if "file_size_limit" in b else None,
            allowed_mime_types=tuple(b.get("allowed_mime_types", ())),
        )
        for name, b in table.items()
    )


@dataclass(frozen=True)
class ConfigKey:
    """One config.toml key and the ``LocalConfig`` field it sets (whose default is the
    model's)."""

    #: Where it is: ``("auth", "email", "enable_confirmations")``.
    path: tuple[str, ...]
    field: str
    #: From the TOML value to the field's (with the file's path, for relative paths).
    parse: Callable[[Any, Path], Any] | None = None
    #: A second key that must also allow it (``[auth.email] enable_signup``).
    also: tuple[str, ...] | None = None
    #: The stack setting the key decides, when that is not the field itself.
    decides: str | None = None

    @property
    def label(self) -> str:
        """As people write it: ``[auth.email].enable_confirmations``; a table as ``[storage.buckets]``."""
        if self.parse is _buckets:
            return f"[{'.'.join(self.path)}]"
        return f"[{'.'.join(self.path[:-1])}].{self.path[-1]}"

    def read(self, raw: dict[str, Any], file: Path) -> Any:
        """The field's value from the parsed file, or ``MISSING`` when the key is absent."""
        value = _lookup(raw, self.path)
        if value is MISSING:
            return MISSING
        if self.also is not None and _lookup(raw, self.also) is False:
            value = False
        return self.parse(value, file) if self.parse else value


MISSING: Any = object()


def _lookup(raw: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = raw
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def _url_list(value: Any) -> tuple[str, ...]:
    """``[auth] additional_redirect_urls``: a list of strings (a lone string would be read
    as its letters)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(
            "[auth] additional_redirect_urls must be a list of URLs",
            hint='write it as additional_redirect_urls = ["https://127.0.0.1:3000"]',
        )
    return tuple(value)


#: Every config.toml key carbook reads → the ``LocalConfig`` field it sets. The SDK reads
#: the file with it, the stack names changed keys with it (``stack restart`` applies them).
CONFIG_TABLE: tuple[ConfigKey, ...] = (
    ConfigKey(("api", "port"), "api_port"),
    ConfigKey(("db", "port"), "db_port"),
    ConfigKey(("api", "schemas"), "api_schemas", parse=lambda v, _: tuple(v)),
    ConfigKey(("api", "extra_search_path"), "api_extra_search_path", parse=lambda v, _: tuple(v)),
    ConfigKey(("api", "max_rows"), "api_max_rows"),
    ConfigKey(("auth", "jwt_expiry"), "jwt_expiry"),
    ConfigKey(("auth", "enable_signup"), "enable_signup", also=("auth", "email", "enable_signup")),
    ConfigKey(("auth", "email", "enable_confirmations"), "enable_confirmations"),
    ConfigKey(("auth", "enable_anonymous_sign_ins"), "enable_anonymous_sign_ins"),
    ConfigKey(("auth", "minimum_password_length"), "minimum_password_length"),
    ConfigKey(("auth", "site_url"), "site_url"),
    ConfigKey(
        ("auth", "additional_redirect_urls"), "additional_redirect_urls", parse=lambda v, _: _url_list(v)
    ),
    ConfigKey(("storage", "file_size_limit"), "storage_file_size_limit", parse=lambda v, _: parse_size(v)),
    ConfigKey(("storage", "buckets"), "buckets", parse=_buckets),
    ConfigKey(("realtime", "enabled"), "realtime_enabled"),
    ConfigKey(
        ("auth", "signing_keys_path"),
        "signing_keys_path",
        parse=lambda v, file: (file.parent / v) if v else None,
        decides="signing_keys",
    ),
)


def load_local_config(path: Path | None = None) -> LocalConfig:
    """Read ``supabase/config.toml`` (carbook's own unless ``path`` is given).

    Raises:
        ConfigurationError: the file is missing or not valid TOML.
    """
    path = path or supabase_dir() / "config.toml"
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    values = {key.field: key.read(raw, path) for key in CONFIG_TABLE}
    return LocalConfig(**{field: value for field, value in values.items() if value is not MISSING})


class StackState(LocalConfig):
    """What a local stack records in its ``stack.json`` when it starts: config.toml's
    settings as it read them, and its ports and keys. Written by the stack (whose settings
    extend this model), read by the SDK for its local defaults (``read_stack_state``)."""

    model_config = ConfigDict(extra="ignore", frozen=False)

    state_dir: Path
    #: The config.toml these settings were read from; None for a stack built in code
    #: (tests, benchmarks), which keeps its own settings whatever config.toml says.
    config_file: Path | None = None
    host: str = "127.0.0.1"
    postgrest_port: int = 0
    postgrest_admin_port: int = 0
    #: The Python app (Auth and Storage), behind nginx.
    app_port: int = 0
    #: nginx's own health answer, for the supervisor.
    nginx_status_port: int = 0
    #: The Realtime service (WebSocket), behind nginx at /realtime/v1.
    realtime_port: int = 0
    #: Its REST broadcast (HTTP), behind nginx at /realtime/v1/api.
    realtime_api_port: int = 0
    jwt_secret: str = LOCAL_JWT_SECRET
    #: Today's keys; the gateway turns them into the legacy JWTs below for the services.
    publishable_key: str = LOCAL_PUBLISHABLE_KEY
    secret_key: str = LOCAL_SECRET_KEY
    #: The legacy keys: HS256 JWTs signed with ``jwt_secret``.
    anon_key: str = LOCAL_ANON_KEY
    service_role_key: str = LOCAL_SERVICE_ROLE_KEY
    postgrest_pool: int = 10

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def db_url(self) -> str:
        return f"postgresql://postgres:postgres@{self.host}:{self.db_port}/postgres"


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings the environment gives, each from its first variable that is set."""
    environ = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for name, variables in ENV_VARS.items():
        for var in variables:
            if environ.get(var):
                found[name] = environ[var]
                break
    return found


def stack_state_file(state_dir: Path | None = None) -> Path | None:
    """Where a local stack records what it started: ``<project>/.carbook/stack.json``
    (None outside a project)."""
    if state_dir:
        return Path(state_dir) / "stack.json"
    root = find_project()
    return root / ".carbook" / "stack.json" if root is not None else None


State = TypeVar("State", bound=StackState)


@overload
def read_stack_state(state_dir: Path | None = None) -> StackState | None: ...
@overload
def read_stack_state(state_dir: Path | None, model: type[State]) -> State | None: ...
def read_stack_state(
    state_dir: Path | None = None, model: type[StackState] = StackState
) -> StackState | None:
    """What the local stack recorded when it last started (None: never started here). The
    one reader of ``stack.json``: the SDK's defaults, the CLI and the stack's own processes
    all come through here, as ``model`` (``StackState``, or the stack's settings).

    Raises:
        ConfigurationError: the file is there but unreadable, or not a stack's state.
    """
    path = stack_state_file(state_dir)
    if path is None or not path.exists():
        return None
    try:
        return model.model_validate_json(path.read_bytes())
    except (OSError, PydanticValidationError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a stack's state"
        raise ConfigurationError(
            f"the local stack's state file {path} is unreadable ({reason})",
            hint="run `carbook stack restart` to write it again",
        ) from None


def local_stack(state_dir: Path | None = None) -> dict[str, Any]:
    """The local stack's URL, keys and database URL: from its state file when it has run,
    else from ``supabase/config.toml``'s ports; and the bucket's limits.

    Raises:
        ConfigurationError: its state file is unreadable.
    """
    cfg: LocalConfig = read_stack_state(state_dir) or load_local_config()
    if isinstance(cfg, StackState):
        host, key, secret_key, jwt_secret = cfg.host, cfg.publishable_key, cfg.secret_key, cfg.jwt_secret
    else:
        host, key, secret_key, jwt_secret = (
            "127.0.0.1",
            LOCAL_PUBLISHABLE_KEY,
            LOCAL_SECRET_KEY,
            LOCAL_JWT_SECRET,
        )
    values: dict[str, Any] = {
        "url": f"http://{host}:{cfg.api_port}",
        "key": key,
        "secret_key": secret_key,
        # Only to verify HS256 access tokens given to ``as_user``.
        "jwt_secret": jwt_secret,
        "db_url": f"postgresql://postgres:postgres@{host}:{cfg.db_port}/postgres",
    }
    bucket = next((b for b in cfg.buckets if b.name == "car-images"), None)
    if bucket is not None:
        if bucket.file_size_limit:
            values["image_max_bytes"] = bucket.file_size_limit
        if bucket.allowed_mime_types:
            values["image_types"] = bucket.allowed_mime_types
    return values


def is_local_url(url: str) -> bool:
    """Whether a project URL names this machine (the local stack), not a hosted project."""
    host = (urlsplit(url.strip()).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def resolve_db_url(explicit: str | None = None, *, api_url: str | None = None) -> tuple[str, str]:
    """The database URL by carbook's one precedence, and where it came from: the
    argument (``"--db-url"``), ``CARBOOK_DB_URL``, ``SUPABASE_DB_URL``, then the local
    stack's (``"local stack"``).

    ``api_url`` is the project URL in force (``--url``); without it, ``CARBOOK_URL`` or
    ``SUPABASE_URL``. When that names a hosted project, the local stack's database is not
    its database: falling back to it would check or roll back the wrong one.

    Raises:
        ConfigurationError: the project is not local and no database URL was given.
    """
    if explicit:
        return explicit, "--db-url"
    for var in ENV_VARS["db_url"]:
        if os.environ.get(var):
            return os.environ[var], var
    project = api_url or from_environment().get("url")
    if project and not is_local_url(project):
        host = urlsplit(project.strip()).hostname or project
        raise ConfigurationError(
            f"the project is {host}, but no database URL was given: not falling back to the local stack's database",
            hint="set SUPABASE_DB_URL or pass --db-url with that project's database",
        )
    return str(local_stack()["db_url"]), "local stack"


def default_db_url(explicit: str | None = None, *, api_url: str | None = None) -> str:
    """The database URL by carbook's one precedence (see `resolve_db_url`).

    Raises:
        ConfigurationError: the project is not local and no database URL was given.
    """
    return resolve_db_url(explicit, api_url=api_url)[0]
