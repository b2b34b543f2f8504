"""nginx on the API port: the local stack's gateway, as Kong is for ``supabase start``.

- every route needs one of the project's keys in ``apikey`` (header or query), checked
  against a ``map`` of the known keys; public object URLs and signed-URL downloads are
  open, as on hosted Supabase; a refusal is the 401 JSON hosted Supabase sends;
- ``/rest/v1/`` goes straight to PostgREST over kept-alive connections (see the
  upstreams' comment); function calls (``/rest/v1/rpc/``) take bodies of at most
  ``RPC_MAX_BODY``. A request without a user token (no ``Authorization``, or a
  ``Bearer`` of an ``sb_`` key) gets the JWT its apikey stands for as its bearer token:
  the publishable key becomes the anon JWT, the secret key the service_role JWT, as the
  Supabase CLI's gateway does; a user's JWT passes through unchanged;
- everything else (``/auth/v1``, ``/storage/v1``, unknown routes) goes to the Python app
  on an internal port, with request bodies streamed (the app enforces bucket limits);
- CORS for every route, as the Supabase CLI's gateway (Kong's ``cors`` plugin) does and
  hosted Supabase's API allows: a preflight (``OPTIONS`` with ``Origin`` and
  ``Access-Control-Request-Method``) is answered 200 before the apikey check, with the
  requested headers allowed, and every other reply, errors included, carries
  ``Access-Control-Allow-Origin: *`` and the headers the clients read; the services' own
  CORS headers (PostgREST sets some) are dropped, so none appears twice;
- the secret key is refused in a request that comes from a browser (a ``Mozilla/``
  User-Agent, or an ``Origin``), with hosted Supabase's 401: it is for servers only;
- a request id on every request and reply, an access log in the stack's ``logs/``.

nginx runs unprivileged with a config written into the stack's state folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from carbook_sdk.errors import ConfigurationError

from .nginx_realtime import realtime_locations
from .nginx_rpc import lua_modules, rpc_guard
from .settings import StackSettings

__all__ = [
    "INSTALL_HINT",
    "KEY_REFUSALS",
    "PROXY_BUFFER_SIZE",
    "RPC_MAX_BODY",
    "RPC_MAX_QUERY",
    "URL_MAX",
    "command",
    "find_nginx",
    "render_config",
    "write_config",
]

INSTALL_HINT = "install nginx (Debian/Ubuntu: `apt-get install nginx-light`) or set CARBOOK_NGINX_BIN"

#: The 401 bodies hosted Supabase's gateway refuses a key with: none, an unknown one, the
#: secret key from a browser. The app's own apikey check (``gateway``) answers the same.
KEY_REFUSALS: dict[str, dict[str, str]] = {
    "missing": {
        "message": "No API key found in request",
        "hint": "No `apikey` request header or url param was found.",
    },
    "invalid": {
        "message": "Invalid API key",
        "hint": "Double check your Supabase `anon` or `service_role` API key.",
    },
    "secret_in_browser": {
        "message": "Forbidden use of secret API key in browser",
        "hint": "Secret API keys can only be used in a protected environment and should never be "
        "used in a browser. Use the publishable key instead.",
    },
}
#: What a preflight is told, as Kong's cors plugin (the Supabase CLI's gateway) says it
#: with its default settings: these methods, whatever headers the browser asked for.
CORS_ALLOW_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"
#: Seconds a browser may keep a preflight's answer (Chromium keeps at most 7200).
CORS_MAX_AGE = 3600
#: Reply headers a page's script may read: what supabase-js, postgrest-js and storage-js
#: read (counts, ranges, downloads, GoTrue's API version), and the stack's request id.
CORS_EXPOSE_HEADERS = (
    "Content-Range",
    "Content-Length",
    "Content-Type",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Location",
    "Accept-Ranges",
    "Range-Unit",
    "Preference-Applied",
    "X-Total-Count",
    "ETag",
    "Last-Modified",
    "Cache-Control",
    "Location",
    "Retry-After",
    "Date",
    "X-Request-Id",
    "X-Supabase-Api-Version",
)
#: CORS headers a service behind the gateway may set itself; the gateway's own replace them.
_UPSTREAM_CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Credentials",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
)
#: Largest body REST accepts (PostgREST's replies and requests are JSON, never files).
REST_MAX_BODY = "1m"
#: Largest body of a function call (``/rest/v1/rpc/``), and longest query string of one
#: made with GET. PostgREST 12.0.2 spends time quadratic in the number of keys of a call
#: (unknown keys included) before it answers, on one core that every other request then
#: waits for: measured on 2 cores, direct, 200 keys 0.08 s, 400 keys 0.36 s, 800 keys
#: 1.6 s, 1,600 keys (22 KB) 7.6 s. 2 KiB holds every legitimate call of the schema's
#: functions many times over (``book_car_atomic`` takes one uuid: a 50-byte body) and
#: at most about 300 one-letter keys: under a quarter of a second, worst case.
RPC_MAX_BODY = "2k"
RPC_MAX_QUERY = 2048
#: Longest request line and header line nginx reads; a longer URL is a 414 in JSON. Every
#: part behind nginx reads at least this much (PostgREST, uvicorn: 16 KiB and more).
URL_MAX = "8k"
#: Room for the reply headers of PostgREST, which echoes the whole query in
#: ``Content-Location``: twice the longest URL, so no reply is ever "too big a header".
PROXY_BUFFER_SIZE = "16k"
#: Bodies at least this large go to PostgREST over a connection of their own: PostgREST
#: (warp) drains at most 8 KiB of a body it never reads and then closes the connection
#: without saying so, which a request sent next on that pooled connection would meet.
FRESH_CONNECTION_BODY = 8000


def find_nginx() -> Path:
    """``CARBOOK_NGINX_BIN``, else ``nginx`` on PATH, else Debian's ``/usr/sbin/nginx``.

    Raises:
        ConfigurationError: not found; names how to install it.
    """
    explicit = os.environ.get("CARBOOK_NGINX_BIN")
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return Path(explicit)
        raise ConfigurationError(f"CARBOOK_NGINX_BIN={explicit} is not an executable file", hint=INSTALL_HINT)
    candidates: list[Path] = []
    on_path = shutil.which("nginx")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path("/usr/sbin/nginx"))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigurationError(
        "nginx was not found: the local stack serves its API port with it", hint=INSTALL_HINT
    )


def _quote(value: str) -> str:
    """A string as an nginx config literal (single-quoted, escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json(body: Mapping[str, object]) -> str:
    return _quote(json.dumps(body, separators=(",", ":")))


def _human(size: str) -> str:
    """An nginx size ("2k", "1m") as people write it ("2 KiB", "1 MiB")."""
    return f"{size[:-1]} {dict(k='KiB', m='MiB')[size[-1]]}"


def _rest_error(code: str, message: str, details: str) -> dict[str, str | None]:
    """An error in PostgREST's shape, for what nginx answers on PostgREST's behalf."""
    return {"code": code, "message": message, "details": details, "hint": None}


def _proxy_headers(indent: str, extra: Mapping[str, str] | None = None) -> str:
    """The proxy_set_header lines every proxying location sends, in full: HTTP/1.1 with an
    empty Connection (upstream keep-alive), the host, the request id, the client."""
    headers = {
        "Connection": '""',
        "Host": "$http_host",
        "X-Request-Id": "$request_id",
        "X-Forwarded-For": "$remote_addr",
        **(extra or {}),
    }
    lines = [f"{indent}proxy_http_version 1.1;"]
    lines += [f"{indent}proxy_set_header {name} {value};" for name, value in headers.items()]
    return "\n".join(lines)


def render_config(settings: StackSettings, folder: Path) -> str:
    """nginx.conf for a stack: ``folder`` holds its pid and temp files."""
    s = settings
    proxy_headers = _proxy_headers(" " * 8)
    # Repeated in the location, though it would inherit them: every location that proxies
    # states its own, so adding one header there can never drop the rest.
    app_headers = _proxy_headers(" " * 12)
    # PostgREST reads every query parameter as a filter: the key must not reach it.
    strip_key = "\n".join(
        [
            "            error_page 502 = @rest_unavailable;",
            "            error_page 504 = @rest_timeout;",
            '            if ($args ~ "^apikey=[^&]*&?(.*)$") {',
            "                set $args $1;",
            "            }",
            '            if ($args ~ "^(.*)&apikey=[^&]*(.*)$") {',
            "                set $args $1$2;",
            "            }",
        ]
    )
    to_postgrest = "\n".join(
        [
            _proxy_headers(" " * 12, {"apikey": '""', "Authorization": "$carbook_authorization"}),
            # The upstream is a variable (pooled or fresh), so the path is rewritten before:
            # a proxy_pass with a variable and a URI would send that URI for every request.
            "            proxy_pass http://$carbook_rest_upstream;",
        ]
    )
    rewrite = "            rewrite ^/rest/v1(/.*)$ $1 break;"
    rest_common = f"{strip_key}\n{rewrite}\n{to_postgrest}"
    modules = lua_modules(find_nginx())
    load_modules = "".join(f"load_module {m};\n" for m in modules)
    rpc_common, rpc_internal = rest_common, ""
    if modules:
        handler, rpc_internal = rpc_guard(" " * 12, to_postgrest)
        rpc_common = f"{strip_key}\n{rewrite}\n{handler}"
    logs = s.logs_dir
    key_jwts = s.key_jwts()
    # The secret key is known as such, so that a browser can be refused it.
    keys = "\n".join(
        f"        {_quote(k)} {'secret' if k == s.secret_key else 'ok'};" for k in sorted(key_jwts)
    )
    refusals = "\n".join(
        f"        if ($carbook_refusal = {kind}) {{\n            return 401 {_json(body)};\n        }}"
        for kind, body in KEY_REFUSALS.items()
    )
    hide_cors = "\n".join(f"        proxy_hide_header {h};" for h in _UPSTREAM_CORS_HEADERS)
    realtime = realtime_locations(s, _proxy_headers, _json)
    new_keys = "\n".join(f"        {_quote(k)} {_quote(v)};" for k, v in sorted(key_jwts.items()) if k != v)
    # As root, workers would drop to `nobody` and could not write the temp folders here.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    # One worker: on a small machine nginx shares the cores with PostgREST, PostgreSQL and
    # the app, and a second worker measured slower, not faster (wrk, docs/benchmarks.md).
    return f"""# Written by carbook's local stack at every start: edit supabase/config.toml instead.
{load_modules}{user}worker_processes 1;
# Every request runs a dozen regular expressions (the key, browser and preflight maps, the
# apikey strip): compiled to machine code once, not interpreted each time.
pcre_jit on;
daemon off;
pid {folder / "nginx.pid"};
error_log {logs / "nginx-error.log"} warn;

events {{
    worker_connections 4096;
}}

http {{
    default_type application/json;
    server_tokens off;
    log_format carbook '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                       '$request_time $upstream_response_time $request_id';
    access_log {logs / "nginx-access.log"} carbook buffer=64k flush=1s;
    client_body_temp_path {folder / "tmp" / "body"};
    proxy_temp_path {folder / "tmp" / "proxy"};
    fastcgi_temp_path {folder / "tmp" / "fastcgi"};
    uwsgi_temp_path {folder / "tmp" / "uwsgi"};
    scgi_temp_path {folder / "tmp" / "scgi"};
    # The map keys are JWTs, longer than the default bucket holds.
    map_hash_bucket_size 512;
    # Longer than any client's idle expiry (httpx: 5 s), so the client always closes an
    # idle connection first and never sends a request into one the server just closed.
    keepalive_timeout 65s;
    keepalive_requests 100000;

    map $http_apikey $carbook_apikey {{
        "" $arg_apikey;
        default $http_apikey;
    }}
    map $carbook_apikey $carbook_key {{
        "" missing;
{keys}
        default invalid;
    }}
    # Open without a key, as on hosted Supabase: the routes Storage serves without a JWT
    # (public objects and their info, signed-URL downloads, signed-URL uploads), the
    # JWKS that verifies user tokens, and email links (GET /auth/v1/verify), which hosted
    # Supabase's gateway leaves open too: they are clicked in a mail, without a key.
    map "$request_method $uri" $carbook_key_needed {{
        "~^(GET|HEAD) /storage/v1/object/public/" 0;
        "~^GET /storage/v1/object/info/public/" 0;
        "~^(GET|HEAD) /storage/v1/object/sign/" 0;
        "~^PUT /storage/v1/object/upload/sign/" 0;
        "~^(GET|HEAD) /auth/v1/\\.well-known/jwks\\.json$" 0;
        "~^GET /auth/v1/verify$" 0;
        "~ /carbook-(bad-request|uri-too-long|header-too-large|method-not-allowed)$" 0;
        default 1;
    }}
    # A browser: every browser's User-Agent starts so, and only browsers send Origin on
    # their own (hosted Supabase decides by the User-Agent).
    map "$http_user_agent|$http_origin" $carbook_browser {{
        "~^Mozilla/" 1;
        "~\\|.+$" 1;
        default 0;
    }}
    map "$carbook_key_needed $carbook_key $carbook_browser" $carbook_refusal {{
        "1 missing 0" missing;
        "1 missing 1" missing;
        "1 invalid 0" invalid;
        "1 invalid 1" invalid;
        "1 secret 1" secret_in_browser;
        default "";
    }}

    # CORS, as Kong's cors plugin answers for the Supabase CLI: a preflight is an OPTIONS
    # with an Origin and an Access-Control-Request-Method (never with an apikey).
    map "$request_method|$http_origin|$http_access_control_request_method" $carbook_preflight {{
        "~^OPTIONS\\|.+\\|.+$" 1;
        default 0;
    }}
    map $carbook_preflight $carbook_cors_methods {{
        1 "{CORS_ALLOW_METHODS}";
        default "";
    }}
    map $carbook_preflight $carbook_cors_headers {{
        1 $http_access_control_request_headers;
        default "";
    }}
    map $carbook_preflight $carbook_cors_max_age {{
        1 {CORS_MAX_AGE};
        default "";
    }}
    map $carbook_preflight $carbook_cors_vary {{
        1 "Access-Control-Request-Headers";
        default "";
    }}
    map $carbook_preflight $carbook_cors_expose {{
        1 "";
        default "{", ".join(CORS_EXPOSE_HEADERS)}";
    }}
    # The JWT an API key stands for behind the gateway (a legacy key is one already).
    map $carbook_apikey $carbook_key_jwt {{
{new_keys}
        default $carbook_apikey;
    }}
    map $http_authorization $carbook_authorization {{
        "" "Bearer $carbook_key_jwt";
        "~*^bearer +sb_" "Bearer $carbook_key_jwt";
        default $http_authorization;
    }}

    # Kept-alive connections to PostgREST. Safe only because every location that proxies
    # sends HTTP/1.1 and an empty Connection header (``_proxy_headers``): a location's own
    # proxy_set_header replaces the server's whole set, and without ``Connection ""`` nginx
    # asks PostgREST to close each connection while still pooling it (the "upstream
    # prematurely closed connection" of earlier versions). Idle connections are closed
    # here (20 s) before PostgREST closes them (33-60 s). Large and chunked bodies take a
    # fresh connection (``FRESH_CONNECTION_BODY``). A failed request is never sent again:
    # proxy_next_upstream leaves out non_idempotent, so a write is not repeated.
    upstream carbook_rest {{
        server {s.host}:{s.postgrest_port};
        keepalive 64;
        keepalive_timeout 20s;
    }}
    upstream carbook_rest_fresh {{
        server {s.host}:{s.postgrest_port};
    }}
    map $args $carbook_rpc_query_too_long {{
        "~^.{{{RPC_MAX_QUERY + 1},}}" 1;
        default 0;
    }}
    map "$http_transfer_encoding|$content_length" $carbook_rest_upstream {{
        "~^.+\\|" carbook_rest_fresh;
        "~^\\|(\\d{{5,}}|[89]\\d{{3}})$" carbook_rest_fresh;
        default carbook_rest;
    }}
    # A WebSocket upgrade is passed on as one; any other request asks for no keep-alive.
    map $http_upgrade $carbook_upgrade {{
        "" "";
        default upgrade;
    }}
    upstream carbook_app {{
        server {s.host}:{s.app_port};
        keepalive 64;
    }}

    server {{
        listen {s.host}:{s.api_port};
        # Every reply, from nginx or behind it, errors included (no location adds headers
        # of its own, so these hold everywhere); an empty value adds nothing.
        add_header X-Request-Id $request_id always;
        add_header Access-Control-Allow-Origin * always;
        add_header Access-Control-Allow-Methods $carbook_cors_methods always;
        add_header Access-Control-Allow-Headers $carbook_cors_headers always;
        add_header Access-Control-Max-Age $carbook_cors_max_age always;
        add_header Access-Control-Expose-Headers $carbook_cors_expose always;
        add_header Vary $carbook_cors_vary always;
{hide_cors}
        # The same in every location that proxies (a location's own proxy_set_header would
        # replace these, so each location repeats them in full).
{proxy_headers}
        proxy_connect_timeout 5s;
        proxy_send_timeout 60s;
        proxy_read_timeout 60s;
        proxy_next_upstream error timeout;
        proxy_buffer_size {PROXY_BUFFER_SIZE};
        proxy_buffers 8 {PROXY_BUFFER_SIZE};
        proxy_busy_buffers_size {PROXY_BUFFER_SIZE};
        large_client_header_buffers 4 {URL_MAX};

        # A request nginx itself refuses (a NUL in the path, say) still gets JSON, and so
        # does a URL or a header line longer than any part reads.
        error_page 400 /carbook-bad-request;
        error_page 414 /carbook-uri-too-long;
        error_page 494 /carbook-header-too-large;
        error_page 405 /carbook-method-not-allowed;

        # Before the apikey check: a browser's preflight never carries one.
        if ($carbook_preflight) {{
            return 200;
        }}
{refusals}

        location /rest/v1/ {{
            client_max_body_size {REST_MAX_BODY};
            error_page 413 = @rest_too_large;
{rest_common}
        }}

        location /rest/v1/rpc/ {{
            # PostgREST is slow on calls with many keys: see RPC_MAX_BODY.
            client_max_body_size {RPC_MAX_BODY};
            error_page 413 = @rpc_too_large;
            if ($carbook_rpc_query_too_long) {{
                return 414 {_json(_rest_error("414", "URI too long", f"A function call through /rest/v1/rpc/ takes at most {RPC_MAX_QUERY} characters of query string."))};
            }}
{rpc_common}
        }}
{rpc_internal}
        location / {{
            # Uploads stream to the app, which stops them at the bucket's limit.
            client_max_body_size 0;
            proxy_request_buffering off;
            error_page 502 504 = @app_unavailable;
{app_headers}
            proxy_pass http://carbook_app;
        }}

{realtime}
        location = /carbook-bad-request {{
            internal;
            # The request line could not be read, so where it was going is unknown: one
            # body that Storage's clients (and any JSON reader) understand.
            return 400 {_json({"statusCode": "400", "error": "InvalidKey", "message": "The request path is not valid"})};
        }}
        location = /carbook-uri-too-long {{
            internal;
            return 414 {_json(_rest_error("414", "URI too long", f"A request line holds at most {_human(URL_MAX)}."))};
        }}
        location = /carbook-method-not-allowed {{
            # nginx's own 405 (it serves no TRACE): JSON in the gateway's shape, not HTML.
            internal;
            return 405 '{{"message":"Method not allowed"}}';
        }}
        location = /carbook-header-too-large {{
            internal;
            return 400 {_json(_rest_error("431", "Request header too large", f"A header line holds at most {_human(URL_MAX)}."))};
        }}
        location @rest_too_large {{
            return 413 {_json(_rest_error("413", "Payload too large", f"A REST request body holds at most {_human(REST_MAX_BODY)}."))};
        }}
        location @rpc_too_large {{
            return 413 {_json(_rest_error("413", "Payload too large", f"A function call through /rest/v1/rpc/ takes at most {_human(RPC_MAX_BODY)} of arguments."))};
        }}
        location @rest_unavailable {{
            return 503 {_json({"code": "PGRST000", "message": "The REST service is unavailable", "details": None, "hint": None})};
        }}
        location @rest_timeout {{
            return 504 {_json({"code": "PGRST003", "message": "The REST service timed out", "details": None, "hint": None})};
        }}
        location @app_unavailable {{
            return 503 {_json({"message": "The service is unavailable"})};
        }}
    }}

    # For the supervisor only: is nginx itself up, whatever the parts behind it do.
    server {{
        listen {s.host}:{s.nginx_status_port};
        access_log off;
        location / {{
            return 200 '{{"nginx":"ok"}}';
        }}
    }}
}}
"""


def write_config(settings: StackSettings) -> Path:
    """Write the stack's nginx.conf (and its folders) into the state folder; its path."""
    folder = settings.state_dir / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    path = folder / "nginx.conf"
    path.write_text(render_config(settings, folder))
    return path


def command(settings: StackSettings, config: Path) -> list[str]:
    """How nginx runs ``config`` (from ``write_config``): in its folder, logging errors
    to the stack's log folder from the first line it reads."""
    return [
        str(find_nginx()),
        "-p",
        str(config.parent),
        "-c",
        str(config),
        "-e",
        str(settings.logs_dir / "nginx-error.log"),
    ]
