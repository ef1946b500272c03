"""The one conftest: registers the shared fixtures plugin (``tests/fixtures/``)."""

pytest_plugins = ["tests.fixtures"]
