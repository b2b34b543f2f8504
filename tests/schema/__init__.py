"""Tests of carbook's schema."""
