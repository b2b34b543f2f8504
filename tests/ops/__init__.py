"""Tests of carbook's ops."""
