"""The flow rules both the engine and activation apply, written once below both.

Due times and quiet hours (:mod:`~flowhouse.rules.timing`, :mod:`~flowhouse.rules.due`), the
send-time checks as SQL builders (:mod:`~flowhouse.rules.sendtime`), and the context every
statement over the state tables runs in (:mod:`~flowhouse.rules.context`).
"""
