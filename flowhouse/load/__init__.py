"""Loading a store's files into the canonical inputs (``flowhouse load``).

``read`` reads CSV, Parquet or JSON Lines by column name; ``mapping`` turns a store's own export
(Shopify, WooCommerce, or a mapping file of its own) into canonical columns; ``project`` builds the
rows to check; ``checks`` holds every check; ``run`` checks, writes and records the load.
"""

from flowhouse.load.mapping import shipped_mappings
from flowhouse.load.read import detect_format
from flowhouse.load.report import SHOWN_REJECTS, LoadReport, Reject
from flowhouse.load.run import load_file

__all__ = [
    "SHOWN_REJECTS",
    "LoadReport",
    "Reject",
    "detect_format",
    "load_file",
    "shipped_mappings",
]
