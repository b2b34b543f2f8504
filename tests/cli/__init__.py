"""Tests of carbook's cli."""
