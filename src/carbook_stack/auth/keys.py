"""``/auth/v1/.well-known/jwks.json``: the public keys user tokens are signed with.

Open without an apikey, as the Supabase CLI's gateway serves it: anyone verifying a
token (supabase-py's ``auth.get_claims()``, PostgREST, an edge function) may fetch it.
Only public halves are listed: a private part (``d``) never leaves the stack.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..service import AppState


async def jwks(request: Request, state: AppState) -> Response:
    # Keys change only with a restart; clients may cache the set for a while.
    return JSONResponse(state.keys.jwks(), headers={"Cache-Control": "public, max-age=600"})
