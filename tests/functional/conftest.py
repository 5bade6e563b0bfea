"""Entry-point fixtures for this tier (see ``tests/entry_fixtures.py``)."""

from tests.entry_fixtures import entry_env, lambda_context

__all__ = ["entry_env", "lambda_context"]
