"""Postroom: a self-hosted email channel for support teams."""

__version__ = "0.1.0"
