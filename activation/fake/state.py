"""What the fake provider received: every accepted message, in memory and as JSON Lines.

:class:`Recording` is thread-safe (the server runs in one thread, tests read from another). When a
record directory is given, each accepted message is also appended as one line to
``<record_dir>/received.jsonl`` (the handle stays open and is flushed after every request) so a
test or the demo in another process can read it with :func:`read_received`.

Deliveries are counted per ``message_id``: a message accepted twice (not deduplicated by the
provider) is a duplicate. :class:`Clock` is the simulated time the fake stamps messages with.

Audience syncs: the recording also holds what the destinations hold — Klaviyo profiles and list
memberships, SendGrid marketing contacts and list memberships, paid-audience members, webhook
payloads — and logs every row a sync endpoint received as a :class:`SyncEntry`, so a test can
compare a destination with its source and prove that no row was sent twice unchanged
(:meth:`Recording.sync_repeats`).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from flowhouse.core.clock import utc, utcnow

RECEIVED_FILE = "received.jsonl"
#: Klaviyo's profile identifiers, in the order they are matched.
KLAVIYO_IDENTIFIERS = ("external_id", "email", "phone_number")
#: SendGrid's contact identifiers, in the order they are matched.
SENDGRID_IDENTIFIERS = ("email", "external_id", "anonymous_id", "phone_number_id")
#: Profile attributes merged key by key on update (others are replaced).
_NESTED = ("properties", "location", "custom_fields")
Member = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted message. ``message_id`` is flowhouse's own id (custom args, the status
    callback's query, Klaviyo's ``unique_id`` or the webhook's ``Idempotency-Key``);
    ``provider_message_id`` the id the fake answered with; ``body`` an excerpt; ``sender`` who
    it is from (SendGrid's ``Name <email>``, Twilio's ``From`` and/or ``MessagingServiceSid``)
    and ``reply_to`` where replies go (SendGrid)."""

    provider: str
    message_id: str | None
    provider_message_id: str | None
    address: str | None
    subject: str | None
    body: str | None
    send_at: datetime | None
    received_at: datetime
    customer_id: str | None = None
    sender: str | None = None
    reply_to: str | None = None

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
            now = utc(now)
        self._pinned = now

    def now(self) -> datetime:
        if self._pinned is not None:
            return self._pinned
        return utcnow() + self.offset


@dataclass(frozen=True, slots=True)
class Activity:
    """A SendGrid recipient as the Email Activity API lists it."""

    received: Received
    msg_id: str
    to_email: str
    from_email: str | None


@dataclass(frozen=True, slots=True)
class Stored:
    """A Klaviyo profile or a SendGrid contact: its ``id``, its ``attributes`` merged from every
    upsert (never mutated: an update stores a new :class:`Stored`), when it was created and
    last updated."""

    id: str
    attributes: dict[str, Any]
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class SyncEntry:
    """One row a sync endpoint accepted.

    ``destination``: klaviyo, sendgrid, audience or webhook; ``operation``: upsert, add, remove
    (a webhook row's own ``operation``, else post); ``target``: the list id, audience or hook
    name (None for a Klaviyo profile import, or SendGrid contacts upserted without a list);
    ``key``: the Klaviyo profile id, the SendGrid contact's e-mail (else its other identifier),
    the audience member (``COLUMN=hash`` pairs joined by ``,``) or the webhook row's ``key``
    (else its ``Idempotency-Key``); ``attributes``: the row as sent."""

    destination: str
    operation: str
    target: str | None
    key: str
    attributes: Any
    received_at: datetime

    @property
    def stream(self) -> tuple[str, str | None, str]:
        """The rows that follow one another: one key in one destination object."""
        return (self.destination, self.target, self.key)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["received_at"] = _iso(self.received_at)
        return data


def _identities(attributes: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """``name:value`` for each identifier present (e-mail lower-cased)."""
    found = []
    for name in names:
        value = attributes.get(name)
        if isinstance(value, str) and value:
            found.append(f"{name}:{value.lower() if name == 'email' else value}")
    return found


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` over ``old``: a None clears a field, nested objects (properties, location,
    custom fields) are merged key by key, a field not given stays."""
    merged = dict(old)
    for name, value in new.items():
        if value is None:
            merged.pop(name, None)
        elif name in _NESTED and isinstance(value, dict):
            merged[name] = merge(old.get(name) or {}, value)
        else:
            merged[name] = value
    return merged


def member_key(member: Member) -> str:
    """An audience member as one string: ``COLUMN=hash`` pairs joined by ``,``."""
    return ",".join(f"{column}={value}" for column, value in member)


def _pair(member: Member) -> list[str]:
    found = dict(member)
    return [found.get("EMAIL_SHA256", ""), found.get("PHONE_SHA256", "")]


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
        self._audiences: dict[str, set[Member]] = defaultdict(set)
        self._profiles: dict[str, Stored] = {}
        self._profile_keys: dict[str, str] = {}
        self._klaviyo_lists: dict[str, dict[str, None]] = defaultdict(dict)
        self._contacts: dict[str, Stored] = {}
        self._contact_keys: dict[str, str] = {}
        self._sendgrid_lists: dict[str, dict[str, None]] = {}
        self._hooks: dict[str, list[Any]] = defaultdict(list)
        self._sync_log: list[SyncEntry] = []
        self._sync_requests: Counter[str] = Counter()
        self._sync_items: Counter[str] = Counter()
        #: What a provider's handlers keep beyond the above (the fake Spree store's records).
        self.stores: dict[str, Any] = {}

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

    def add_members(self, audience: str, members: list[Member]) -> int:
        """Add ``members`` to ``audience``; how many were new."""
        with self._lock:
            known = self._audiences[audience]
            before = len(known)
            known.update(members)
            return len(known) - before

    def remove_members(self, audience: str, members: list[Member]) -> int:
        """Take ``members`` (exactly as added) out of ``audience``; how many were there."""
        with self._lock:
            known = self._audiences[audience]
            before = len(known)
            known.difference_update(members)
            return before - len(known)

    def add_hook(self, name: str, payload: Any) -> None:
        """Keep a webhook payload posted to ``/hooks/{name}`` (first deliveries only)."""
        with self._lock:
            self._hooks[name].append(payload)

    def log_sync(self, endpoint: str, entries: list[SyncEntry]) -> None:
        """Count one accepted request to a sync ``endpoint`` and log its rows."""
        with self._lock:
            self._sync_requests[endpoint] += 1
            self._sync_items[endpoint] += len(entries)
            self._sync_log.extend(entries)

    # -- Klaviyo profiles and lists -------------------------------------------------------

    def klaviyo_upsert(
        self, attributes: dict[str, Any], given_id: str | None, new_id: str, now: datetime
    ) -> tuple[Stored, bool]:
        """Create or update the profile ``given_id`` (when known) or else the one an identifier
        (external id, e-mail, phone) matches; the profile and whether it was created now."""
        with self._lock:
            found = self._profiles.get(given_id or "") or self._matching_profile(attributes)
            old = found.attributes if found else {}
            profile = Stored(
                id=found.id if found else new_id,
                attributes=merge(old, attributes),
                created=found.created if found else now,
                updated=now,
            )
            for key in _identities(old, KLAVIYO_IDENTIFIERS):
                self._profile_keys.pop(key, None)
            for key in _identities(profile.attributes, KLAVIYO_IDENTIFIERS):
                self._profile_keys[key] = profile.id
            self._profiles[profile.id] = profile
            return profile, found is None

    def _matching_profile(self, attributes: dict[str, Any]) -> Stored | None:
        for key in _identities(attributes, KLAVIYO_IDENTIFIERS):
            if key in self._profile_keys:
                return self._profiles[self._profile_keys[key]]
        return None

    def klaviyo_relate(self, list_id: str, profile_ids: list[str], add: bool) -> list[int]:
        """Add ``profile_ids`` to the list (or remove them); the positions of unknown ids
        (then nothing changes). Adding a member or removing a non-member is a no-op."""
        with self._lock:
            unknown = [i for i, p in enumerate(profile_ids) if p not in self._profiles]
            if unknown:
                return unknown
            members = self._klaviyo_lists[list_id]
            for profile_id in profile_ids:
                if add:
                    members[profile_id] = None
                else:
                    members.pop(profile_id, None)
            return []

    # -- SendGrid contacts and lists ------------------------------------------------------

    def sendgrid_upsert(
        self, contacts: list[dict[str, Any]], list_ids: list[str], now: datetime
    ) -> list[Stored]:
        """Create or update ``contacts`` (matched by lower-cased e-mail, else their other
        identifier) and add them to ``list_ids``; the stored contacts, in order."""
        with self._lock:
            stored = [self._upsert_contact(c, now) for c in contacts]
            for list_id in list_ids:
                members = self._sendgrid_lists.setdefault(list_id, {})
                members.update((c.id, None) for c in stored)
            return stored

    def _upsert_contact(self, fields: dict[str, Any], now: datetime) -> Stored:
        keys = _identities(fields, SENDGRID_IDENTIFIERS)
        found = next((self._contact_keys[k] for k in keys if k in self._contact_keys), None)
        old = self._contacts.get(found or "")
        contact = Stored(
            id=old.id if old else str(uuid.uuid4()),
            attributes=merge(old.attributes if old else {}, fields),
            created=old.created if old else now,
            updated=now,
        )
        for key in _identities(contact.attributes, SENDGRID_IDENTIFIERS):
            self._contact_keys[key] = contact.id
        self._contacts[contact.id] = contact
        return contact

    def sendgrid_unlist(
        self, list_id: str, contact_ids: list[str]
    ) -> tuple[str | None, list[Stored]]:
        """Take ``contact_ids`` off the list: what is not found (``"list"`` or ``"contacts"``;
        then nothing changes) and the contacts named."""
        with self._lock:
            members = self._sendgrid_lists.get(list_id)
            if members is None:
                return "list", []
            if any(c not in self._contacts for c in contact_ids):
                return "contacts", []
            for contact_id in contact_ids:
                members.pop(contact_id, None)
            return None, [self._contacts[c] for c in contact_ids]

    def sendgrid_find(self, emails: list[str]) -> dict[str, tuple[Stored, list[str]]]:
        """The contacts of ``emails`` (lower-cased) with their list ids, by e-mail."""
        with self._lock:
            found: dict[str, tuple[Stored, list[str]]] = {}
            for email in emails:
                contact_id = self._contact_keys.get(f"email:{email.lower()}")
                if contact_id is not None:
                    found[email.lower()] = (self._contacts[contact_id], self._lists_of(contact_id))
            return found

    def _lists_of(self, contact_id: str) -> list[str]:
        return sorted(i for i, members in self._sendgrid_lists.items() if contact_id in members)

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

    def members(self, audience: str) -> set[Member]:
        with self._lock:
            return set(self._audiences.get(audience, set()))

    def profiles(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Klaviyo profiles by their first identifier (external id, e-mail or phone), each as
        (profile id, attributes)."""
        with self._lock:
            found = {}
            for p in self._profiles.values():
                keys = _identities(p.attributes, KLAVIYO_IDENTIFIERS)
                found[keys[0].partition(":")[2] if keys else p.id] = (p.id, dict(p.attributes))
            return found

    def klaviyo_profile(self, profile_id: str) -> Stored | None:
        with self._lock:
            return self._profiles.get(profile_id)

    def klaviyo_profiles(self) -> dict[str, Stored]:
        """Every Klaviyo profile by id, in creation order."""
        with self._lock:
            return dict(self._profiles)

    def klaviyo_list(self, list_id: str) -> dict[str, dict[str, Any]]:
        """The members of a Klaviyo list: profile id -> attributes (``properties`` nested, as
        Klaviyo keeps them), in the order they were added."""
        with self._lock:
            members = self._klaviyo_lists.get(list_id, {})
            return {p: dict(self._profiles[p].attributes) for p in members}

    def sendgrid_contacts(self) -> dict[str, dict[str, Any]]:
        """Every SendGrid contact by e-mail (else its other identifier)."""
        with self._lock:
            return dict(self._contact_view(c) for c in self._contacts)

    def sendgrid_list(self, list_id: str) -> dict[str, dict[str, Any]]:
        """The contacts on a SendGrid list by e-mail: ``{"id", **fields, "list_ids"}``."""
        with self._lock:
            members = self._sendgrid_lists.get(list_id, {})
            return dict(self._contact_view(c) for c in members)

    def _contact_view(self, contact_id: str) -> tuple[str, dict[str, Any]]:
        contact = self._contacts[contact_id]
        keys = _identities(contact.attributes, SENDGRID_IDENTIFIERS)
        key = keys[0].partition(":")[2] if keys else contact_id
        view = {"id": contact_id, **contact.attributes, "list_ids": self._lists_of(contact_id)}
        return key, view

    def hook_payloads(self, name: str) -> list[Any]:
        """The payloads posted to ``/hooks/{name}``, in order (repeated keys left out)."""
        with self._lock:
            return list(self._hooks.get(name, []))

    def lists(self) -> dict[str, Any]:
        """Every destination object, for ``GET /_fake/lists``: Klaviyo lists of profiles
        ``{"id", **attributes}``, SendGrid lists of contacts ``{"id", **fields, "list_ids"}``,
        audiences of ``[email_hash, phone_hash]`` (``""`` when absent), sorted."""
        with self._lock:
            klaviyo = {
                name: [{"id": p, **self._profiles[p].attributes} for p in members]
                for name, members in self._klaviyo_lists.items()
            }
            sendgrid = {
                name: [self._contact_view(c)[1] for c in members]
                for name, members in self._sendgrid_lists.items()
            }
            audiences = {
                name: sorted(_pair(m) for m in members) for name, members in self._audiences.items()
            }
        return {"klaviyo": klaviyo, "sendgrid": sendgrid, "audiences": audiences}

    def sync_log(self, destination: str | None = None) -> list[SyncEntry]:
        """The rows sync endpoints accepted, in arrival order (of one destination when given)."""
        with self._lock:
            return [e for e in self._sync_log if destination in (None, e.destination)]

    def sync_repeats(self, destination: str | None = None) -> list[SyncEntry]:
        """Rows sent again unchanged: the same operation and attributes as the row received
        just before for the same key in the same destination object."""
        last: dict[tuple[str, str | None, str], SyncEntry] = {}
        repeats = []
        for entry in self.sync_log(destination):
            before = last.get(entry.stream)
            if before and (before.operation, before.attributes) == (
                entry.operation,
                entry.attributes,
            ):
                repeats.append(entry)
            last[entry.stream] = entry
        return repeats

    def stats(self) -> dict[str, Any]:
        """Counts for ``GET /_fake/stats``."""
        repeats = len(self.sync_repeats())
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
                "sendgrid_contacts": len(self._contacts),
                "sync_requests": dict(self._sync_requests),
                "sync_items": dict(self._sync_items),
                "sync_repeats": repeats,
            }
