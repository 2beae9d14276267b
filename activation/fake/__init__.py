"""flowhouse's local fake provider: a real HTTP server standing in for SendGrid, Twilio, Klaviyo, a
generic webhook receiver and a paid-audience API, so the demo and the tests need no account.

Each provider's endpoints live with the provider (``activation/providers/<name>/fake.py``);
:mod:`flowhouse.activation.fake.app` mounts them behind the failure injector, beside the inspection
endpoints, and :mod:`flowhouse.activation.fake.common` holds what the handlers share.

What it serves (requests on a path a provider document in ``specs/`` covers are checked against
it and refused as the real API would: 401 for a security failure, else 400 in the provider's own
error shape; refused requests are not recorded):

- SendGrid ``POST /v3/mail/send`` (202, ``X-Message-Id``) and the Email Activity lookup
  ``GET /v3/messages?query=unique_args['message_id']="<id>"&limit=N``.
- Twilio ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (201, the message resource)
  and ``GET`` on the same path, filtered by ``To``, ``From`` and ``DateSent``, ``DateSent>``
  (on or after) or ``DateSent<`` (on or before).
- Klaviyo ``POST /api/events`` (202, deduplicated on ``unique_id``) and ``POST /api/profile-import``
  (201 new, 200 updated: the profile of ``data.id``, else of its external id, e-mail — any case —
  or phone; null clears a field, ``properties`` merge, ``meta.patch_properties.unset`` works; an
  invalid e-mail or a phone not in E.164 is a 400); the ``revision`` header is required.
- Klaviyo lists: ``POST``/``DELETE /api/lists/{id}/relationships/profiles`` (204; at most 1,000
  ids; an id the fake never issued makes the whole request 400 and changes nothing; a list exists
  once used), ``GET`` on the same path (profile ids in the order added) and
  ``GET /api/profiles?filter=equals(email,"x")`` (also ``any(...)``; id, email, phone_number,
  external_id), both paged with ``page[size]`` (default 20) and ``page[cursor]``.
- SendGrid marketing: ``PUT /v3/marketing/contacts`` (202 ``{"job_id"}``; contacts upserted by
  lower-cased e-mail, each with a stable UUID, added to ``list_ids``; applied at once although
  SendGrid queues the job; one invalid contact refuses the request, each listed in ``errors``),
  ``POST /v3/marketing/contacts/search/emails`` (200 with ``result`` per address, ``{"error":
  "contact not found"}`` for the missing; 404 when none is found) and
  ``DELETE /v3/marketing/lists/{id}/contacts?contact_ids=a,b`` (202; 404 for a list never used or
  an unknown contact id).
- ``POST /hooks/{name}``: JSON signed with ``X-Flowhouse-Signature`` (``v1=`` + hex HMAC-SHA256 of
  ``{X-Flowhouse-Timestamp}.{body}`` under the webhook secret), deduplicated on
  ``Idempotency-Key``.
- ``POST /audiences/{audience}/users`` (hashed members, a set per audience), ``DELETE`` with the
  same body (members matched exactly as added) and ``GET`` to list.

How to run: ``python -m flowhouse.activation.fake.server --port 8025 [--inbox DIR] [--record DIR]``, or in
tests ``with running(FakeSettings(...)) as fake:`` (:mod:`flowhouse.activation.fake.server`), which serves
on a free port in a background thread and gives ``fake.url`` and the live ``fake.state``.

Recording (:mod:`flowhouse.activation.fake.state`): every accepted message is kept in memory and, with a
record directory, appended to ``<record_dir>/received.jsonl``; a message id accepted twice counts
as a duplicate. Inspection: ``GET /_fake/messages``, ``GET /_fake/stats``, ``POST /_fake/failures``,
``POST /_fake/clock`` (``{"now": iso or null}``), ``POST /_fake/reset``. Audience syncs:
``GET /_fake/lists`` (every Klaviyo list, SendGrid list and audience held), ``GET /_fake/sync``
(the rows sync endpoints accepted, and those sent again unchanged); ``/_fake/stats`` counts
``sync_requests`` and ``sync_items`` per endpoint and ``sync_repeats``.

Failure injection (:mod:`flowhouse.activation.fake.failures`): shares of provider requests answered 429 with
``Retry-After``, 500, held past the client's time-out then 504, or slowed; seeded, and drawn before
anything is recorded. Engagement (:mod:`flowhouse.activation.fake.engagement`): SendGrid events and Twilio
status callbacks written into an inbox directory as the providers would post them, decided from
a hash of the message id.
"""
