"""E-mail through SendGrid's Mail Send API (``POST /v3/mail/send``).

One request carries up to 1,000 personalizations (one per recipient). Each personalization
names its message in ``custom_args`` (``message_id``, ``customer_id``, ``flow_id``, ``step_id``;
inside the personalization, as the document types a top-level ``custom_args`` as a string), and
carries the message's own mail headers (``List-Unsubscribe``), its subject and, when scheduled,
``send_at``. Every request has the category ``flowhouse``; flows are told apart by custom args. A
test send (``flowhouse test-send``) also has the category ``flowhouse_test`` and the custom
argument ``flowhouse_test``, and never shares a request with real messages.

A request carries one ``from`` (and ``reply_to``): the message's flow's ``sender`` (its name,
e-mail and reply-to), each field the flow leaves out taken from ``delivery.sendgrid``
(``from_name``, ``from_email``, ``reply_to``). Messages with different senders never share a
request.

Two ways to carry content, never mixed in one request (SendGrid's document says substitutions
must not be combined with a dynamic template):

- **Dynamic templates**: a message whose template is mapped in ``delivery.sendgrid.templates`` is
  sent with that ``template_id`` and its render context as ``dynamic_template_data``; one request
  per template.
- **Rendered content**: the content of a request is shared by all its personalizations, while
  each message is rendered for its recipient. The shared content is therefore made of
  substitution tags (:data:`HTML_TAG`, :data:`TEXT_TAG`) and each personalization's
  ``substitutions`` hold its rendered parts (the subject has its own field per
  personalization). SendGrid allows at most 10,000 bytes of substitutions per personalization
  (:data:`SUBSTITUTIONS_LIMIT`); a message above that goes alone in its own request with its
  content given directly. Requests share one set of MIME parts (plain text first, then HTML).

A message SendGrid is bound to refuse (no valid address) also goes alone: SendGrid refuses a
whole request for one bad recipient.

The response (202) gives one ``X-Message-Id`` for the whole request; every message of the call
records it (SendGrid's event webhook reports ``sg_message_id`` as that id plus a suffix).

Reconciliation (``reconcile = "lookup"`` when ``delivery.sendgrid.lookup`` is on): a message is
looked up by its ``message_id`` custom argument through SendGrid's Email Activity API (``GET
/v3/messages``); what it lists is that message's own (each by its per-recipient ``msg_id``), so a
listed message confirms only the row it names, and the row records the request's id (the ``msg_id``
up to its first dot, as :meth:`SendGridDestination.accepted` records the ``X-Message-Id``). That API
is documented by SendGrid but is not part of the OpenAPI documents shipped in ``specs/``, so its
request is not validated by :mod:`flowhouse.activation.openapi`; it needs SendGrid's extended
activity history on the account, and it lags behind sending by a few minutes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, ClassVar

import httpx

from flowhouse.activation.message import Outcome, Outgoing, Sender
from flowhouse.activation.providers.base import (
    Call,
    Destination,
    Listed,
    Listing,
    Reconcile,
    Secrets,
)
from flowhouse.activation.providers.sendgrid.config import SendGrid

#: Substitution tags of the shared content in rendered mode.
HTML_TAG = "-fh-html-"
TEXT_TAG = "-fh-text-"
#: SendGrid's limit on the collective size of one personalization's substitutions, in bytes.
SUBSTITUTIONS_LIMIT = 10_000
#: Personalizations in one Mail Send request at most.
MAX_PERSONALIZATIONS = 1000
MAIL_SEND = "/v3/mail/send"
#: An address SendGrid can take (the loader's rule); others go alone, as SendGrid refuses them.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
ACTIVITY = "/v3/messages"
#: The category and custom argument of test sends.
TEST_CATEGORY = "flowhouse_test"


class SendGridDestination(Destination):
    """E-mail through SendGrid (see the module docstring)."""

    name: ClassVar[str] = "sendgrid"
    default_base_url: ClassVar[str] = "https://api.sendgrid.com"
    max_batch: ClassVar[int] = MAX_PERSONALIZATIONS
    reconcile: Reconcile = "lookup"
    config: SendGrid

    def __init__(self, config: SendGrid, secrets: Secrets, base_url: str | None = None) -> None:
        super().__init__(config, secrets, base_url)
        self._key = secrets.get(config.api_key_env, "The SendGrid API key")
        self.reconcile = "lookup" if config.lookup else "none"
        self.lookup_delay = config.lookup_delay

    def calls(self, batch: Sequence[Outgoing]) -> list[Call]:
        return [self._call(group) for group in _chunks(self._groups(batch))]

    def _groups(self, batch: Sequence[Outgoing]) -> list[list[Outgoing]]:
        """Messages that can share one request: same template, or same rendered parts."""
        groups: dict[tuple[str, ...], list[Outgoing]] = {}
        for message in batch:
            groups.setdefault(self._group_key(message), []).append(message)
        return list(groups.values())

    def _group_key(self, message: Outgoing) -> tuple[str, ...]:
        """Messages bound to be refused (no valid address) or sent with their own content go
        alone, so that they cannot take a whole request down with them."""
        kind = self._kind(message)
        if message.is_test:
            return ("test", message.message_id)
        if kind == "direct" or not (message.address and EMAIL.match(message.address)):
            return ("alone", message.message_id)
        sender = tuple(v or "" for v in self._sender(message.sender))
        if kind == "template":
            return (kind, *sender, self.config.templates[message.template or ""])
        return (kind, *sender, *_parts(message))

    def _kind(self, message: Outgoing) -> str:
        """How the content travels: ``template`` (a dynamic template), ``rendered`` (through
        substitutions) or ``direct`` (in the request's content: too big for substitutions, or
        none at all)."""
        if self._template_id(message) is not None:
            return "template"
        return "rendered" if _parts(message) and not _too_big(message) else "direct"

    def _template_id(self, message: Outgoing) -> str | None:
        return self.config.templates.get(message.template) if message.template else None

    def _call(self, group: Sequence[Outgoing]) -> Call:
        body = {**self._envelope(group[0].sender), **self._content(group)}
        if group[0].is_test:
            body["categories"] = [*body["categories"], TEST_CATEGORY]
        request = httpx.Request(
            "POST", self.base_url + MAIL_SEND, headers=self._headers(), content=_dumps(body)
        )
        return Call(request, tuple(m.message_id for m in group))

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._key}", "content-type": "application/json"}

    def _sender(self, given: Sender | None) -> tuple[str, str | None, str | None]:
        """E-mail, name and reply-to of a request: the flow's, else the configured defaults."""
        given = given or Sender()
        return (
            given.email or self.config.from_email,
            given.name or self.config.from_name,
            given.reply_to or self.config.reply_to,
        )

    def _envelope(self, given: Sender | None) -> dict[str, Any]:
        """What every request carries: sender, reply-to and the flowhouse category."""
        email, name, reply_to = self._sender(given)
        sender: dict[str, Any] = {"email": email}
        if name:
            sender["name"] = name
        envelope: dict[str, Any] = {"from": sender, "categories": ["flowhouse"]}
        if reply_to:
            envelope["reply_to"] = {"email": reply_to}
        return envelope

    def _content(self, group: Sequence[Outgoing]) -> dict[str, Any]:
        first = group[0]
        kind = self._kind(first)
        if kind == "template":
            people = [_personalization(m) | {"dynamic_template_data": _data(m)} for m in group]
            return {"template_id": self._template_id(first), "personalizations": people}
        if kind == "direct":
            return {"personalizations": [_personalization(first)], **_direct(first)}
        people = [_personalization(m) | {"substitutions": substitutions(m)} for m in group]
        return {"personalizations": people, "content": _tagged(_parts(first))}

    def accepted(self, call: Call, response: httpx.Response) -> list[Outcome]:
        provider_id = response.headers.get("x-message-id")
        code = response.status_code
        return [Outcome(m, "sent", provider_id, status_code=code) for m in call.message_ids]

    def reason(self, response: httpx.Response) -> str:
        return sendgrid_reason(response)

    def lookup_request(self, message: Outgoing) -> httpx.Request:
        """The Email Activity query for ``message`` (by its ``message_id`` custom argument)."""
        query = f"unique_args['message_id']=\"{message.message_id}\""
        return httpx.Request(
            "GET",
            self.base_url + ACTIVITY,
            params={"query": query, "limit": "10"},
            headers={"authorization": f"Bearer {self._key}"},
        )

    async def lookup(
        self, client: httpx.AsyncClient, message: Outgoing, since: datetime
    ) -> Listing | None:
        if self.reconcile != "lookup":
            return None
        try:
            response = await client.send(self.lookup_request(message))
        except httpx.HTTPError:
            return None
        return _found(response, message)


def substitutions(message: Outgoing) -> dict[str, str]:
    """The rendered parts of ``message`` keyed by their tags."""
    subs: dict[str, str] = {}
    if message.html:
        subs[HTML_TAG] = message.html
    if message.text:
        subs[TEXT_TAG] = message.text
    return subs


def substitutions_size(subs: Mapping[str, str]) -> int:
    """Bytes the substitutions take, counted as their JSON (an upper bound of SendGrid's count):
    the length of ``json.dumps(subs, ensure_ascii=False, separators=(",", ":"))`` in UTF-8,
    counted without building it (every e-mail is measured)."""
    items = sum(_json_string_size(k) + 1 + _json_string_size(v) for k, v in subs.items())
    return 2 + items + max(len(subs) - 1, 0)


def _json_string_size(text: str) -> int:
    """Bytes of ``text`` as a JSON string (quotes included) in UTF-8, as ``json.dumps`` with
    ``ensure_ascii=False`` writes it (with the same escaper)."""
    return len(encode_basestring(text).encode())


def _too_big(message: Outgoing) -> bool:
    return substitutions_size(substitutions(message)) > SUBSTITUTIONS_LIMIT


def _parts(message: Outgoing) -> tuple[str, ...]:
    """The MIME types ``message`` has, in the order SendGrid requires (plain text first)."""
    found = (("text/plain", message.text), ("text/html", message.html))
    return tuple(kind for kind, value in found if value)


def _tagged(parts: Sequence[str]) -> list[dict[str, str]]:
    tags = {"text/plain": TEXT_TAG, "text/html": HTML_TAG}
    return [{"type": kind, "value": tags[kind]} for kind in parts]


def _direct(message: Outgoing) -> dict[str, Any]:
    values = {"text/plain": message.text, "text/html": message.html}
    content = [{"type": kind, "value": values[kind]} for kind in _parts(message)]
    return {"content": content} if content else {}


def _personalization(message: Outgoing) -> dict[str, Any]:
    """Recipient, custom args, headers, subject and schedule of one message."""
    person: dict[str, Any] = {
        "to": [{"email": message.address or ""}],
        "custom_args": {
            "message_id": message.message_id,
            "customer_id": message.customer_id,
            "flow_id": message.flow_id,
            "step_id": message.step_id,
        },
    }
    if message.is_test:
        person["custom_args"][TEST_CATEGORY] = "true"
    if message.headers:
        person["headers"] = dict(message.headers)
    if message.subject:
        person["subject"] = message.subject
    if message.send_at is not None:
        person["send_at"] = int(message.send_at.replace(tzinfo=UTC).timestamp())
    return person


def _data(message: Outgoing) -> dict[str, Any]:
    """Dynamic template data: the render context, plus the subject for the template's use."""
    data = dict(message.data)
    if message.subject:
        data["subject"] = message.subject
    return data


def _chunks(groups: Sequence[Sequence[Outgoing]]) -> Iterator[Sequence[Outgoing]]:
    for group in groups:
        for start in range(0, len(group), MAX_PERSONALIZATIONS):
            yield group[start : start + MAX_PERSONALIZATIONS]


def _dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def sendgrid_reason(response: httpx.Response) -> str:
    """SendGrid's ``{"errors": [{"field", "message"}]}`` as ``field: message; ...``."""
    try:
        errors = response.json().get("errors") or []
        parts = [_error(e) for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError):
        parts = []
    return "; ".join(p for p in parts if p) or response.text


def _error(error: Mapping[str, Any]) -> str:
    field, message = error.get("field"), str(error.get("message") or "")
    return f"{field}: {message}" if field and field != "null" else message


def _found(response: httpx.Response, message: Outgoing) -> Listing | None:
    """The activity listed for ``message``: keyed by its own ``message_id`` as well as SendGrid's
    ``msg_id``, so that no other row can take it."""
    if response.status_code != 200:
        return None
    try:
        messages = response.json().get("messages")
    except (ValueError, AttributeError):
        return None
    if not isinstance(messages, list):
        return None
    items = []
    for n, item in enumerate(messages):
        msg_id = item.get("msg_id") if isinstance(item, dict) else None
        sg_id = msg_id if isinstance(msg_id, str) and msg_id else None
        key = f"{message.message_id}/{sg_id or n}"
        items.append(Listed(key, sg_id.split(".")[0] if sg_id else None))
    return Listing(tuple(items))
