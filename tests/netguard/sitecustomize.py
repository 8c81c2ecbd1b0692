"""Loaded by subprocesses the tests start (``PYTHONPATH`` points here): no real network,
and the models exported on first use shared with the rest of the test run."""

from tests.netguard_hook import install
from tests.shared_models import share_models_dir

install()
share_models_dir()
