"""The package version, in one place (``medseg_fast.__version__``, ``medseg-fast --version``)."""

__version__ = "0.1.0"
