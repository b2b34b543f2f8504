"""The async client and its services: the source the sync twins are generated from."""
