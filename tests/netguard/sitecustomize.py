"""Loaded by subprocesses the tests start (``PYTHONPATH`` points here): no real network."""

from tests.netguard_hook import install

install()
