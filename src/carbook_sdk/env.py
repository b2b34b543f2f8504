"""The environment variables carbook reads, in one place and with no imports, so that the
CLI can name them in its options (``envvar=``) without loading anything for ``--help``.

Precedence, everywhere: an explicit argument (or CLI flag) > ``CARBOOK_*`` >
``SUPABASE_*`` > the local stack.
"""

from __future__ import annotations

__all__ = ["EMAIL_VARS", "ENV_VARS", "PASSWORD_VARS", "STATE_DIR_VARS", "WORKDIR_VARS"]

#: Environment variables per client setting, first one set wins.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "url": ("CARBOOK_URL", "SUPABASE_URL"),
    # Today's key names first, the legacy ones (anon/service_role JWTs) as fallbacks.
    "key": (
        "CARBOOK_PUBLISHABLE_KEY",
        "CARBOOK_ANON_KEY",
        "SUPABASE_PUBLISHABLE_KEY",
        "SUPABASE_ANON_KEY",
        "SUPABASE_KEY",
    ),
    "secret_key": (
        "CARBOOK_SECRET_KEY",
        "CARBOOK_SERVICE_ROLE_KEY",
        "SUPABASE_SECRET_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
    ),
    "db_url": ("CARBOOK_DB_URL", "SUPABASE_DB_URL"),
    "timeout": ("CARBOOK_TIMEOUT",),
    # Only to verify HS256 access tokens given to ``as_user`` (the project's JWT secret).
    "jwt_secret": ("CARBOOK_JWT_SECRET", "SUPABASE_JWT_SECRET"),
}
#: The variables that name a project folder, as the Supabase CLI's ``SUPABASE_WORKDIR``.
WORKDIR_VARS: tuple[str, ...] = ("CARBOOK_WORKDIR", "SUPABASE_WORKDIR")
#: The local stack's state folder (``carbook stack --state-dir``).
STATE_DIR_VARS: tuple[str, ...] = ("CARBOOK_STATE_DIR",)
#: Who signs in (``carbook auth login``).
EMAIL_VARS: tuple[str, ...] = ("CARBOOK_EMAIL",)
PASSWORD_VARS: tuple[str, ...] = ("CARBOOK_PASSWORD",)
