"""Tests of carbook's sdk."""
