"""GENERATED from ``carbook_sdk/_async/__init__.py`` by ``scripts/unasync.py``: edit that
file and re-run the script, never this one.

The async client and its services: the source the sync twins are generated from.
"""

