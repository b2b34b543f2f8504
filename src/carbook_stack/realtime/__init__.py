"""Realtime for the local stack: the Phoenix-channel WebSocket service at
``/realtime/v1/websocket`` (postgres_changes, Broadcast, Broadcast from the database, Presence).

The supervisor starts it as its own process (``python -m carbook_stack.realtime
STACK_JSON``) through the ``Realtime`` part (``carbook_stack.parts``).
"""
