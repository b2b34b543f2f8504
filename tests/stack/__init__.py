"""Tests of carbook's stack."""
