"""Function calls (``/rest/v1/rpc/``) through a Lua guard, where Debian's nginx Lua module
is installed (``libnginx-mod-http-lua``, which `scripts/setup.sh` installs).

PostgREST 12 answers ``400 {"code":"","message":""}`` when a pooled connection to the
database broke under a call (the database restarting; PostgREST's own issue #4681): a
client reads that as its own mistake, though whether the call took effect is unknown and
a retry is the answer. The guard makes the call as a subrequest, reads the whole reply
and answers exactly that reply 503 with ``Retry-After``; every other reply passes
unchanged. Without the module the calls are proxied straight, and that reply passes as
PostgREST sends it (the SDK reads it as "unreachable" either way).
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path

__all__ = ["EMPTY_ERROR", "LOST_CONNECTION", "lua_modules", "rpc_guard"]

#: PostgREST's reply when the connection broke under the call.
EMPTY_ERROR = '{"code":"","details":null,"hint":null,"message":""}'
#: What the guard answers instead, in PostgREST's shape (its code for a client error).
LOST_CONNECTION = {
    "code": "PGRST001",
    "message": "Database client error. Retrying the connection.",
    "details": "The connection to the database was lost during the call: it may or may not have taken effect.",
    "hint": "Retry shortly; check the outcome first if the call must not happen twice.",
}
#: Where the subrequest goes (internal: no client can ask for it).
INTERNAL = "/carbook-rpc"


@cache
def lua_modules(nginx: Path) -> tuple[Path, ...]:
    """The two module files (NDK, then Lua) of the nginx at ``nginx``, when both are installed."""
    try:
        printed = subprocess.run([str(nginx), "-V"], capture_output=True, text=True, timeout=10).stderr
    except (OSError, subprocess.SubprocessError):
        return ()
    found = re.search(r"--modules-path=(\S+)", printed)
    folder = Path(found.group(1)) if found else Path("/usr/lib/nginx/modules")
    files = (folder / "ndk_http_module.so", folder / "ngx_http_lua_module.so")
    return files if all(f.is_file() for f in files) else ()


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def rpc_guard(indent: str, proxy: str) -> tuple[str, str]:
    """The rpc location's content handler, and the internal location it calls (``proxy``:
    that location's proxy lines, path rewrite and upstream included)."""
    i = indent
    lost = json.dumps(LOST_CONNECTION, separators=(",", ":"))
    handler = f"""{i}content_by_lua_block {{
{i}    ngx.req.read_body()
{i}    local res = ngx.location.capture("{INTERNAL}" .. ngx.var.uri, {{
{i}        method = ngx["HTTP_" .. ngx.req.get_method()],
{i}        args = ngx.var.args,
{i}        always_forward_body = true,
{i}    }})
{i}    if res.status == 400 and res.body == {_lua_string(EMPTY_ERROR)} then
{i}        ngx.status = 503
{i}        ngx.header["Content-Type"] = "application/json; charset=utf-8"
{i}        ngx.header["Retry-After"] = "1"
{i}        ngx.print({_lua_string(lost)})
{i}        return
{i}    end
{i}    ngx.status = res.status
{i}    for name, value in pairs(res.header) do
{i}        local lower = string.lower(name)
{i}        if lower ~= "transfer-encoding" and lower ~= "connection" and lower ~= "keep-alive" then
{i}            ngx.header[name] = value
{i}        end
{i}    end
{i}    ngx.print(res.body)
{i}}}"""
    internal = f"""        location {INTERNAL}/ {{
            internal;
            error_page 502 = @rest_unavailable;
            error_page 504 = @rest_timeout;
            rewrite ^{INTERNAL}(/.*)$ $1 break;
{proxy}
        }}
"""
    return handler, internal
