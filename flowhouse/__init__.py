"""flowhouse: warehouse-native activation for e-commerce marketing flows."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("flowhouse")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
