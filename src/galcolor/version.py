"""The package version, in a module of its own so that any part can import it without the public API."""

__version__ = "0.1.0"
