"""The Realtime service's two locations in the gateway: the WebSocket and the REST
broadcast (``carbook_stack.realtime``), each on its own internal port."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .settings import StackSettings

__all__ = ["REST_MAX_BODY", "realtime_locations"]

#: Largest REST broadcast body nginx lets through: Realtime's payload limit (3,000 kB)
#: and the envelope around it (``carbook_stack.realtime.api.MAX_BODY`` reads the same).
REST_MAX_BODY = "3100k"


def realtime_locations(
    s: StackSettings,
    proxy_headers: Callable[[str, Mapping[str, str] | None], str],
    as_json: Callable[[Mapping[str, object]], str],
) -> str:
    """``proxy_headers``: the proxy_set_header lines every proxying location sends.

    The WebSocket is an upgrade passed through, kept open for as long as the client's
    heartbeats keep it (they come every 25-30 s; a read timeout of an hour only ends a
    connection that went silent). The apikey query parameter stays: the service reads the
    key's role from it, as hosted Realtime does. The REST broadcast keeps its path, which
    the service routes (a topic may hold an encoded slash)."""
    if not (s.realtime_enabled and s.realtime_port):
        return ""
    indent = " " * 12
    upgrade = proxy_headers(indent, {"Upgrade": "$http_upgrade", "Connection": "$carbook_upgrade"})
    headers = proxy_headers(indent, None)
    rest = ""
    if s.realtime_api_port:
        too_large = {"message": f"Payload too large: a broadcast body holds at most {REST_MAX_BODY[:-1]} kB"}
        rest = f"""        location /realtime/v1/api/ {{
            client_max_body_size {REST_MAX_BODY};
            error_page 413 = @realtime_too_large;
            error_page 502 504 = @app_unavailable;
{headers}
            proxy_pass http://{s.host}:{s.realtime_api_port};
        }}
        location @realtime_too_large {{
            return 413 {as_json(too_large)};
        }}
"""
    return f"""        location = /realtime/v1/websocket {{
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
            error_page 502 504 = @app_unavailable;
{upgrade}
            proxy_pass http://{s.host}:{s.realtime_port};
        }}
{rest}"""
