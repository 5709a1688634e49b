"""The package's version, also sent in Hello.sdk so that operators can tell which workers run which
library. pyproject.toml reads it from here."""

__version__ = "0.2.0"

#: ``baton-python/<version>``.
SDK_NAME = f"baton-python/{__version__}"
