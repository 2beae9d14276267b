"""What the fake provider received: every accepted message, in memory and as JSON Lines.

:class:`Recording` is thread-safe (the server runs in one thread, tests read from another). When a
record directory is given, each accepted message is also appended as one line to
``<record_dir>/received.jsonl`` (the handle stays open and is flushed after every request) so a
test or the demo in another process can read it with :func:`read_received`.

Deliveries are counted per ``message_id``: a message accepted twice (not deduplicated by the
provider) is a duplicate. :class:`Clock` is the simulated time the fake stamps messages with.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

RECEIVED_FILE = "received.jsonl"


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted message. ``message_id`` is flowhouse's own id (custom args, the status
    callback's query, Klaviyo's ``unique_id`` or the webhook's ``Idempotency-Key``);
    ``provider_message_id`` the id the fake answered with; ``body`` an excerpt."""

    provider: str
    message_id: str | None
    provider_message_id: str | None
    address: str | None
    subject: str | None
    body: str | None
    send_at: datetime | None
    received_at: datetime
    customer_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["send_at"] = _iso(self.send_at)
        data["received_at"] = _iso(self.received_at)
        return data


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def read_received(record_dir: Path) -> list[dict[str, Any]]:
    """The messages another process's fake provider recorded in ``record_dir`` (complete lines
    only: a line still being written is skipped)."""
    path = Path(record_dir) / RECEIVED_FILE
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n") and line.strip()]


class Clock:
    """Naive-UTC time: the real time plus ``offset``, or a time pinned with :meth:`set_now`."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset
        self._pinned: datetime | None = None

    def set_now(self, now: datetime | None) -> None:
        if now is not None and now.tzinfo is not None:
            now = now.astimezone(UTC).replace(tzinfo=None)
        self._pinned = now

    def now(self) -> datetime:
        if self._pinned is not None:
            return self._pinned
        return datetime.now(UTC).replace(tzinfo=None) + self.offset


@dataclass(frozen=True, slots=True)
class Activity:
    """A SendGrid recipient as the Email Activity API lists it."""

    received: Received
    msg_id: str
    to_email: str
    from_email: str | None


class Recording:
    """The live recording of one fake provider."""

    def __init__(self, record_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if record_dir is not None:
            Path(record_dir).mkdir(parents=True, exist_ok=True)
            self._file = (Path(record_dir) / RECEIVED_FILE).open("a", encoding="utf-8")
        self._clear()

    def _clear(self) -> None:
        self._received: list[Received] = []
        self._deliveries: Counter[str] = Counter()
        self._accepted: Counter[str] = Counter()
        self._requests: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._rejected_by: Counter[str] = Counter()
        self._injected: Counter[str] = Counter()
        self._deduplicated: Counter[str] = Counter()
        self._seen: set[tuple[str, str]] = set()
        self._twilio: dict[str, list[tuple[datetime, dict[str, Any]]]] = defaultdict(list)
        self._activity: dict[str, list[Activity]] = defaultdict(list)
        self._audiences: dict[str, set[tuple[tuple[str, str], ...]]] = defaultdict(set)
        self._profiles: dict[str, tuple[str, dict[str, Any]]] = {}

    # -- writing (the server) -------------------------------------------------------------

    def accept(self, provider: str, records: list[Received]) -> None:
        """Record one accepted request carrying ``records``."""
        lines = "".join(json.dumps(r.to_json()) + "\n" for r in records) if self._file else ""
        with self._lock:
            self._received.extend(records)
            self._requests[provider] += 1
            self._accepted[provider] += len(records)
            self._deliveries.update(r.message_id for r in records if r.message_id)
            if self._file is not None:
                self._file.write(lines)
                self._file.flush()

    def first_time(self, namespace: str, key: str) -> bool:
        """Whether ``key`` is new in ``namespace`` (and remember it); a repeat is counted as
        deduplicated."""
        with self._lock:
            if (namespace, key) in self._seen:
                self._deduplicated[namespace] += 1
                return False
            self._seen.add((namespace, key))
            return True

    def reject(self, provider: str, reason: str) -> None:
        with self._lock:
            self._rejected[reason] += 1
            self._rejected_by[provider] += 1

    def inject(self, fault: str) -> None:
        with self._lock:
            self._injected[fault] += 1

    def add_twilio(self, sent: datetime, message: dict[str, Any]) -> None:
        """Keep a Twilio message resource (``sent``: its date_sent) for list lookups."""
        with self._lock:
            self._twilio[str(message["to"])].append((sent, message))

    def add_activity(self, items: list[Activity]) -> None:
        with self._lock:
            for item in items:
                if item.received.message_id:
                    self._activity[item.received.message_id].append(item)

    def add_members(self, audience: str, members: list[tuple[tuple[str, str], ...]]) -> int:
        """Add ``members`` to ``audience``; how many were new."""
        with self._lock:
            known = self._audiences[audience]
            before = len(known)
            known.update(members)
            return len(known) - before

    def upsert_profile(self, key: str, new_id: str, attributes: dict[str, Any]) -> tuple[str, bool]:
        """The profile id for ``key`` and whether it was created now."""
        with self._lock:
            found = self._profiles.get(key)
            profile_id = found[0] if found else new_id
            merged = {**(found[1] if found else {}), **attributes}
            self._profiles[key] = (profile_id, merged)
            return profile_id, found is None

    def reset(self) -> None:
        """Forget everything (and empty ``received.jsonl``)."""
        with self._lock:
            self._clear()
            if self._file is not None:
                self._file.seek(0)
                self._file.truncate()
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    # -- reading (tests, lookups, inspection) ----------------------------------------------

    def messages(self, provider: str | None = None) -> list[Received]:
        """Accepted messages in arrival order (of one provider when given)."""
        with self._lock:
            return [r for r in self._received if provider is None or r.provider == provider]

    def deliveries(self, message_id: str) -> int:
        """How many times ``message_id`` was accepted."""
        with self._lock:
            return self._deliveries[message_id]

    def duplicates(self) -> dict[str, int]:
        """Message ids accepted more than once, with their delivery counts."""
        with self._lock:
            return {m: n for m, n in self._deliveries.items() if n > 1}

    def twilio_messages(self, to: str | None) -> list[tuple[datetime, dict[str, Any]]]:
        """Twilio messages (to ``to`` when given) with their send times."""
        with self._lock:
            if to is not None:
                return list(self._twilio.get(to, []))
            return [m for found in self._twilio.values() for m in found]

    def activity(self, message_id: str) -> list[Activity]:
        with self._lock:
            return list(self._activity.get(message_id, []))

    def members(self, audience: str) -> set[tuple[tuple[str, str], ...]]:
        with self._lock:
            return set(self._audiences.get(audience, set()))

    def profiles(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Imported Klaviyo profiles by their key (external id, e-mail or phone)."""
        with self._lock:
            return dict(self._profiles)

    def stats(self) -> dict[str, Any]:
        """Counts for ``GET /_fake/stats``."""
        with self._lock:
            extra = [n - 1 for n in self._deliveries.values() if n > 1]
            return {
                "accepted": dict(self._accepted),
                "requests": dict(self._requests),
                "rejected": dict(self._rejected),
                "rejected_by_provider": dict(self._rejected_by),
                "injected": dict(self._injected),
                "deduplicated": dict(self._deduplicated),
                "duplicates": sum(extra),
                "duplicate_messages": len(extra),
                "profiles": len(self._profiles),
            }
