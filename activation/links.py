"""Signed links in every message: unsubscribe and preferences, and the short links that track the
clicks of SMS messages (all served by ``flowhouse receive``).

A token names the message, the customer and the channel, and carries an HMAC-SHA256 of them under
the store's signing key (``FLOWHOUSE_SIGNING_KEY``), so a link cannot be forged or altered to
unsubscribe someone else. The webhook receiver verifies it before it records an unsubscribe.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from flowhouse.core.errors import ConfigError, FileLocation, FlowhouseError

logger = logging.getLogger(__name__)


class BadToken(FlowhouseError):
    """A link token that is malformed or whose signature does not match."""


@dataclass(frozen=True)
class Claims:
    message_id: str
    customer_id: str
    channel: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(body: str, key: str) -> str:
    digest = hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()
    return _b64(digest[:18])


def sign(claims: Claims, key: str) -> str:
    """``<claims>.<mac>``, URL-safe."""
    body = _b64(
        json.dumps(
            {"m": claims.message_id, "c": claims.customer_id, "ch": claims.channel},
            separators=(",", ":"),
        ).encode()
    )
    return f"{body}.{_mac(body, key)}"


def verify(token: str, key: str) -> Claims:
    """The claims of ``token``; :class:`BadToken` if it is malformed or was not signed with
    ``key``."""
    body, _, mac = token.partition(".")
    if not body or not mac or not hmac.compare_digest(mac, _mac(body, key)):
        raise BadToken("the link's signature does not match")
    try:
        data = json.loads(_unb64(body))
        return Claims(str(data["m"]), str(data["c"]), str(data["ch"]))
    except (ValueError, KeyError, TypeError) as err:
        raise BadToken("the link's token is malformed") from err


def message_links(base_url: str, claims: Claims, key: str) -> dict[str, str]:
    """The ``links`` every template gets for one message."""
    root = base_url.rstrip("/")
    query = urlencode({"token": sign(claims, key)})
    return {
        "unsubscribe": f"{root}/unsubscribe?{query}",
        "preferences": f"{root}/preferences?{query}",
    }


# -- short links in SMS bodies (click tracking) --------------------------------------------------

#: The receiver's path of short links: ``<links_url>/c/<token>``.
SHORT_PATH = "c"
_ID_BYTES = 9
_MAC_BYTES = 6
#: A short link's token: 9 bytes naming the message and the link, 6 of signature, base64url.
TOKEN_CHARS = (_ID_BYTES + _MAC_BYTES) * 4 // 3
#: Where the links registry lives in the inbox folder the sender and the receiver share.
LINKS_FOLDER = "links"
#: How long a short link keeps working and stays on file unless ``delivery.sms_link_days`` says
#: otherwise: six times the ``sms_click`` attribution window (5 days), so a late click still
#: reaches the shop and is credited.
DEFAULT_DAYS = 30
#: The flush time a links file's name starts with (UTC).
_STAMP = "%Y%m%dT%H%M%S%fZ"
_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}'\""


def short_token(message_id: str, position: int, key: str) -> str:
    """The token of link ``position`` (from 1) of message ``message_id``: 20 URL-safe characters,
    the same each time the message is rendered (a retry registers the same link)."""
    ident = hashlib.md5(f"{message_id}:{position}".encode()).digest()[:_ID_BYTES]
    return _b64(ident + _short_mac(ident, key))


def _short_mac(ident: bytes, key: str) -> bytes:
    return hmac.new(key.encode(), b"click:" + ident, hashlib.sha256).digest()[:_MAC_BYTES]


def check_short(token: str, key: str) -> bool:
    """Whether ``token`` is a short link's token signed with ``key`` (else it was forged)."""
    if len(token) != TOKEN_CHARS:
        return False
    try:
        raw = _unb64(token)
    except ValueError:
        return False
    ident, mac = raw[:_ID_BYTES], raw[_ID_BYTES:]
    return len(raw) == _ID_BYTES + _MAC_BYTES and hmac.compare_digest(mac, _short_mac(ident, key))


@dataclass(frozen=True)
class ShortLink:
    """One registered short link: what a click on ``token`` records and where it leads."""

    token: str
    message_id: str
    customer_id: str
    channel: str
    position: int
    url: str


@dataclass
class ShortLinks:
    """Rewrites the links of SMS bodies to ``<base_url>/c/<token>`` and keeps what it registered
    until :meth:`flush` writes it to ``folder`` (``<inbox>/links/``, one JSON Lines file per
    flush, written before the messages go out) for ``flowhouse receive`` to look up. Links to
    ``base_url`` itself (unsubscribe, preferences) are left as they are. Without a folder (a
    preview) the body is rewritten all the same, so its length is what will be sent."""

    base_url: str
    key: str
    folder: Path | None = None
    pending: list[ShortLink] = field(default_factory=list)

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")

    def url(self, token: str) -> str:
        return f"{self.root}/{SHORT_PATH}/{token}"

    def shorten(self, text: str, message_id: str, customer_id: str, channel: str) -> str:
        """``text`` with each link replaced by its short link (registered for :meth:`flush`)."""
        position = 0

        def swap(match: re.Match[str]) -> str:
            nonlocal position
            found = match.group(0)
            url = found.rstrip(_TRAILING)
            tail = found[len(url) :]
            if url.startswith(self.root + "/"):
                return found
            position += 1
            token = short_token(message_id, position, self.key)
            self.pending.append(ShortLink(token, message_id, customer_id, channel, position, url))
            return self.url(token) + tail

        return _URL.sub(swap, text)

    def flush(self) -> Path | None:
        """Write the pending links to the folder (atomically); the file's path, if any."""
        links, self.pending = self.pending, []
        if self.folder is None or not links:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC):{_STAMP}}-{uuid.uuid4().hex[:12]}.jsonl"
        _write(
            self.folder / name, [json.dumps(asdict(link), separators=(",", ":")) for link in links]
        )
        return self.folder / name


def _write(path: Path, lines: list[str]) -> None:
    """``lines`` as the file ``path``, replaced atomically (written aside, synced, renamed)."""
    temp = path.parent / f".{path.name}.tmp"
    with temp.open("w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def written_at(path: Path) -> datetime | None:
    """When a links file was written, from its name (None: not a name :meth:`ShortLinks.flush`
    gives, so never pruned)."""
    try:
        return datetime.strptime(path.name.split("-", 1)[0], _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def is_expired(path: Path, now: datetime, days: int) -> bool:
    """Whether the links of ``path`` are past ``days`` at ``now`` (their file's write time)."""
    at = written_at(path)
    return at is not None and now - at >= timedelta(days=days)


def prune(folder: Path, now: datetime, days: int) -> int:
    """Delete the links files of ``folder`` past ``days`` at ``now``; how many went."""
    if not folder.is_dir():
        return 0
    gone = 0
    for path in sorted(folder.glob("*.jsonl")):
        if is_expired(path, now, days):
            path.unlink(missing_ok=True)
            gone += 1
    return gone


def customer_hash(customer_id: str) -> str:
    """The md5 of a customer id, as ``flowhouse.erased_customers`` keeps it."""
    return hashlib.md5(customer_id.encode()).hexdigest()


@dataclass
class LinkErasure:
    """What :func:`erase` did: the links it removed, and the lines it could not read (left as
    they are, since whose link a line holds cannot be told), each located."""

    removed: int = 0
    unreadable: list[ConfigError] = field(default_factory=list)


def erase(folder: Path, hashes: Collection[str]) -> LinkErasure:
    """Remove from ``folder`` every short link of a customer whose id hashes to one of
    ``hashes`` (each file rewritten atomically, deleted once empty). A line that is not a short
    link is kept and reported: it stops nothing else."""
    result = LinkErasure()
    if not folder.is_dir() or not hashes:
        return result
    for path in sorted(folder.glob("*.jsonl")):
        lines, problems = read_links(path)
        result.unreadable += problems
        kept = [
            line for line, link in lines
            if link is None or customer_hash(link.customer_id) not in hashes
        ]  # fmt: skip
        if len(kept) == len(lines):
            continue
        result.removed += len(lines) - len(kept)
        if kept:
            _write(path, kept)
        else:
            path.unlink()
    return result


#: the fields of a line of a links file (a :class:`ShortLink` as JSON), with their JSON types
_FIELDS: dict[str, type] = {
    "token": str, "message_id": str, "customer_id": str, "channel": str, "position": int,
    "url": str,
}  # fmt: skip
_EXPECTED = "a short link: a JSON object with " + ", ".join(
    f"{name} ({'a whole number' if kind is int else 'text'})" for name, kind in _FIELDS.items()
)


def read_links(path: Path) -> tuple[list[tuple[str, ShortLink | None]], list[ConfigError]]:
    """The non-blank lines of a links file, each with its link (None: not a short link), and a
    located error for each line that is not one."""
    lines: list[tuple[str, ShortLink | None]] = []
    problems: list[ConfigError] = []
    # bytes that are not UTF-8 (a file cut short) read as U+FFFD: that line alone is not a link
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append((line, _link(line, FileLocation(str(path), number))))
        except ConfigError as problem:
            lines.append((line, None))
            problems.append(problem)
    return lines, problems


def _link(line: str, where: FileLocation) -> ShortLink:
    shown = line if len(line) <= 120 else line[:117] + "..."
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON ({exc.msg})", where, shown, _EXPECTED) from None
    if not isinstance(data, dict):
        raise ConfigError("not a JSON object", where, shown, _EXPECTED)
    for name, kind in _FIELDS.items():
        value = data.get(name)
        if isinstance(value, kind) and not isinstance(value, bool):
            continue
        at = FileLocation(where.file, where.line, name)
        if name not in data:
            raise ConfigError(f"{name} is missing", at, shown, _EXPECTED)
        raise ConfigError(f"{name} is not {'a whole number' if kind is int else 'text'}", at,
                          value, _EXPECTED)  # fmt: skip
    return ShortLink(**{name: data[name] for name in _FIELDS})


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class LinkRegistry:
    """The receiver's view of ``<inbox>/links/``: every registered short link by token. The
    folder is read again when it changed (a send wrote a file, a prune or an erasure took links
    away) or a token is not yet known; links whose file is past ``days`` are expired."""

    folder: Path
    days: int = DEFAULT_DAYS
    clock: Callable[[], datetime] = _utcnow
    #: token -> (file name, link)
    links: dict[str, tuple[str, ShortLink]] = field(default_factory=dict)
    #: file name -> what its stat said when it was read (a rewritten file reads again), and its
    #: tokens
    files: dict[str, tuple[tuple[int, int, int], list[str]]] = field(default_factory=dict)
    stamp: int | None = None

    def find(self, token: str) -> ShortLink | None:
        """The live link of ``token``; None if none was registered or it expired."""
        self._refresh(force=token not in self.links)
        found = self.links.get(token)
        if found is None or is_expired(self.folder / found[0], self.clock(), self.days):
            return None
        return found[1]

    def _refresh(self, force: bool) -> None:
        try:
            stamp: int | None = self.folder.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp == self.stamp and not force:
            return
        self.stamp = stamp
        current = _stats(self.folder) if stamp is not None else {}
        for name in [n for n, (key, _) in self.files.items() if current.get(n) != key]:
            for token in self.files.pop(name)[1]:
                if self.links.get(token, ("",))[0] == name:
                    del self.links[token]
        for name, key in current.items():
            if name not in self.files:
                self._read(name, key)

    def _read(self, name: str, key: tuple[int, int, int]) -> None:
        """Register the links of one file; a line that is not a short link is left out and
        logged (located), and the file's other links are served."""
        try:
            lines, problems = read_links(self.folder / name)
        except FileNotFoundError:  # pruned or emptied since it was listed
            return
        for problem in problems:
            logger.warning("short links: %s; the line is left out", problem)
        tokens = []
        for _, link in lines:
            if link is not None:
                self.links[link.token] = (name, link)
                tokens.append(link.token)
        self.files[name] = (key, tokens)


def _stats(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Each links file of ``folder`` with its inode, size and change time."""
    found: dict[str, tuple[int, int, int]] = {}
    for path in folder.glob("*.jsonl"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        found[path.name] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found
