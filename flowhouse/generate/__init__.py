"""The synthetic store generator behind ``flowhouse generate``.

``generate_store`` writes a plausible history for a store (customers over real time zones, a catalog
with prices, costs and stock, sessions, carts, orders and everything that follows them,
subscriptions, consent changes, support tickets) into ``raw.events``, ``raw.customers`` and
``raw.products``; ``continue_store`` appends the next window, late arrivals included. The data is
a deterministic function of the seed and the windows: same seed, same rows. It is generated in
DuckDB SQL (``sql/*.sql``), set-based throughout.
"""

from flowhouse.generate.stats import GenerateStats
from flowhouse.generate.store import continue_store, generate_store

__all__ = ["GenerateStats", "continue_store", "generate_store"]
