"""Sync files: every problem reported at once, at file:line with the field path, the value received
and what was expected; and the library's sync files load."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from flowhouse.core.errors import ConfigError
from flowhouse.core.paths import FLOWS
from flowhouse.flows.sync.files import load_syncs, parse_sync, sync_files, validate_syncs
from flowhouse.flows.sync.syncfile import Sync, json_schema

GOOD = """\
sync: vip_to_klaviyo
name: VIP customers in Klaviyo
source:
  segment: vip
  where: "has_email_consent"
fields:
  email: email
  first_name: first_name
  properties.tier: tier
destination:
  klaviyo: {list_id: Xy12Ab}
mode: mirror
schedule: 1h
"""
UUID = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
KLAVIYO_FIELDS = "email, phone_number, first_name, last_name, external_id, properties.<name>"
SEGMENTS = "engaged_non_buyers, high_discount_sensitivity, lapsed_customers, vip, wholesale"
ONE_OF = "a source needs exactly one of: segment, list, model"


def write(folder: Path, text: str, name: str = "sync.yml") -> Path:
    path = folder / "syncs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_good_sync_parses(tmp_path: Path) -> None:
    sync, problems = parse_sync(write(tmp_path, GOOD))
    assert problems == []
    assert sync is not None
    assert sync.target_name == "klaviyo"
    assert sync.target_options == {"list_id": "Xy12Ab"}
    assert sync.source.relation == "core.customer_attributes"
    assert sync.source.key == "customer_id"
    assert sync.fields == {"email": "email", "first_name": "first_name", "properties.tier": "tier"}
    assert (sync.mode, sync.schedule, sync.enabled) == ("mirror", timedelta(hours=1), True)


def test_defaults_and_other_destinations(tmp_path: Path) -> None:
    text = GOOD.replace("mode: mirror\nschedule: 1h\n", "").replace(
        "  klaviyo: {list_id: Xy12Ab}", "  webhook: {}"
    )
    sync, problems = parse_sync(write(tmp_path, text.replace("properties.tier", "anything")))
    assert problems == []
    assert sync is not None
    assert (sync.target_name, sync.target_options) == ("webhook", {})
    assert (sync.mode, sync.schedule) == ("mirror", timedelta(hours=1))


MODEL_SOURCE = """\
sync: prospects
name: Prospects
source:
  model: core.customer_attributes
  where: "order_count = 0 and has_email_consent"
fields:
  email: email
destination:
  sendgrid: {list_ids: [UUID]}
mode: upsert
""".replace("UUID", UUID)


def test_model_sources_read_the_model_itself(tmp_path: Path) -> None:
    sync, problems = parse_sync(write(tmp_path, MODEL_SOURCE))
    assert problems == []
    assert sync is not None
    assert sync.source.relation == "core.customer_attributes"
    assert sync.target_options == {"list_ids": [UUID]}
    raw = MODEL_SOURCE.replace("core.customer_attributes", "raw.customers").replace(
        "order_count = 0 and has_email_consent", "email_opt_in"
    )
    sync, problems = parse_sync(write(tmp_path, raw))
    assert problems == []
    assert sync is not None and sync.source.relation == "raw.customers"


# (case, text, [problems as printed, {f} standing for the file])
BAD = [
    ("unknown destination field", GOOD.replace("  first_name: first_name", "  frist_name: first_name"),
     ["{f}:8: fields.frist_name: unknown klaviyo field 'frist_name'; did you mean first_name? "
      f"(klaviyo takes {KLAVIYO_FIELDS})"]),
    ("misspelt property prefix", GOOD.replace("  properties.tier", "  property.tier"),
     ["{f}:9: fields.property.tier: unknown klaviyo field 'property.tier'; did you mean "
      f"properties.tier? (klaviyo takes {KLAVIYO_FIELDS})"]),
    ("property without a name", GOOD.replace("  properties.tier", "  properties."),
     ["{f}:9: fields.properties.: properties.<name> needs a name"]),
    ("webhook url not http", GOOD.replace("klaviyo: {list_id: Xy12Ab}", "webhook: {url: ftp://x}"),
     ["{f}:11: destination.webhook.url: expected a URL starting with http:// or https:// "
      "(got 'ftp://x')"]),
    ("two sources", GOOD.replace("  segment: vip", "  segment: vip\n  list: newsletter"),
     [f"{{f}}:3: source: {ONE_OF} (got segment, list)"]),
    ("no source", GOOD.replace("  segment: vip\n", ""), [f"{{f}}:3: source: {ONE_OF}"]),
    ("unknown column", GOOD.replace("properties.tier: tier", "properties.tier: teir"),
     ["{f}:9: fields.properties.tier: unknown column 'teir' in core.customer_attributes; "
      "did you mean tier? (got 'teir')"]),
    ("bad mode", GOOD.replace("mode: mirror", "mode: sync"),
     ["{f}:12: mode: Input should be 'upsert', 'mirror' or 'add_only' (got 'sync')"]),
    ("schedule too short", GOOD.replace("schedule: 1h", "schedule: 30s"),
     ["{f}:13: schedule: a schedule is at least 1m (got '30s')"]),
    ("schedule not a duration", GOOD.replace("schedule: 1h", "schedule: hourly"),
     ["{f}:13: schedule: 'hourly' is not a duration; expected e.g. 30m, 1h, 2d, 1w or 1d12h "
      "(got 'hourly')"]),
    ("unknown segment", GOOD.replace("segment: vip", "segment: vips"),
     [f"{{f}}:4: source.segment: unknown segment 'vips'; did you mean vip? (segments: {SEGMENTS})"]),
    ("sendgrid without email", GOOD.replace("  email: email\n", "").replace(
        "  properties.tier: tier", "  custom_fields.e1_T: tier").replace(
        "klaviyo: {list_id: Xy12Ab}", f"sendgrid: {{list_ids: [{UUID}]}}"),
     ["{f}:6: fields: sendgrid needs an email field: SendGrid keys contacts by e-mail"]),
    ("audience without identifiers", GOOD.replace("  email: email\n", "").replace(
        "  properties.tier: tier\n", "").replace(
        "klaviyo: {list_id: Xy12Ab}", "audience: {audience: vip_customers}"),
     ["{f}:7: fields.first_name: unknown audience field 'first_name' (audience takes email, phone)",
      "{f}:6: fields: an audience needs an email or a phone field (or both)"]),
    ("file-reading function in where", GOOD.replace('"has_email_consent"', "\"read_csv('/etc/passwd') is null\""),
     ["{f}:5: source.where: function READ_CSV() is not allowed in a predicate (got 'READ_CSV')"]),
    ("subquery in where", GOOD.replace('"has_email_consent"', '"(select count(*) from raw.customers) > 0"'),
     ["{f}:5: source.where: only an expression is allowed here, not SUBQUERY "
      "(got '(select count(*) from raw.customers) > 0')"]),
    ("where not boolean", GOOD.replace('"has_email_consent"', '"order_count + 1"'),
     ["{f}:5: source.where: expected a boolean expression such as order_count > 0 "
      "(got 'order_count + 1')"]),
    ("where not SQL", GOOD.replace('"has_email_consent"', "\"tier = 'vip\""),
     ["{f}:5: source.where: not valid SQL: Error tokenizing 'tier = 'vi' (got \"tier = 'vip\")"]),
    ("unknown column in where", GOOD.replace('"has_email_consent"', '"has_consent"'),
     ["{f}:5: source.where: unknown column 'has_consent' in core.customer_attributes; did you "
      "mean has_sms_consent, has_push_consent, has_viber_consent? (got 'has_consent')"]),
    ("column with a table in where", GOOD.replace('"has_email_consent"', '"customer.has_email_consent"'),
     ["{f}:5: source.where: name columns of core.customer_attributes without a table: "
      "has_email_consent rather than customer.has_email_consent (got 'customer.has_email_consent')"]),
    ("unknown model", MODEL_SOURCE.replace("core.customer_attributes", "core.customer_atributes"),
     ["{f}:4: source.model: 'core.customer_atributes' is not a model of this project (models/) nor "
      "a raw input (raw.customers, raw.device_tokens, raw.events, raw.products); did you mean core.customer_attributes, core.int_customer_attributes?"]),
    ("model in another schema", MODEL_SOURCE.replace("core.customer_attributes", "core.stg_customers"),
     ["{f}:4: source.model: 'core.stg_customers' is not a model of this project (models/) nor "
      "a raw input (raw.customers, raw.device_tokens, raw.events, raw.products); did you mean staging.stg_customers?"]),
    ("model not schema.name", MODEL_SOURCE.replace("core.customer_attributes", "customer_attributes"),
     ["{f}:4: source.model: a model is named schema.name, e.g. core.customer_attributes "
      "(got 'customer_attributes')"]),
    ("unknown key column", MODEL_SOURCE.replace("  where:", "  key: customer\n  where:"),
     ["{f}:5: source.key: unknown column 'customer' in core.customer_attributes; did you mean "
      "customer_id? (got 'customer')"]),
    ("segment keyed by email", GOOD.replace("  segment: vip", "  segment: vip\n  key: email"),
     ["{f}:5: source.key: a segment source is keyed by customer_id (its members' id) (got 'email')"]),
    ("list name in capitals", GOOD.replace("segment: vip", "list: Newsletter"),
     ["{f}:4: source.list: a list name is lower case without surrounding spaces (newsletter) "
      "(got 'Newsletter')"]),
    ("unknown field", GOOD.replace("mode: mirror", "mod: mirror"),
     ["{f}:12: mod: unknown field; check the spelling (docs/syncs.md lists every field) (got 'mirror')"]),
    ("two destinations", GOOD.replace("  klaviyo: {list_id: Xy12Ab}", "  klaviyo: {list_id: Xy12Ab}\n  webhook: {}"),
     ["{f}:10: destination: a destination needs exactly one of: klaviyo, sendgrid, audience, webhook"]),
    ("misspelt destination option", GOOD.replace("{list_id: Xy12Ab}", "{list: Xy12Ab}"),
     ["{f}:11: destination.klaviyo.list_id: Field required",
      "{f}:11: destination.klaviyo.list: unknown field; check the spelling (docs/syncs.md lists "
      "every field) (got 'Xy12Ab')"]),
    ("sendgrid list id not a uuid", MODEL_SOURCE.replace(UUID, "newsletter"),
     ["{f}:9: destination.sendgrid.list_ids.0: expected a SendGrid list id: a UUID such as "
      "3f2c1a8e-5b7d-4c2e-9f10-2a4b6c8d0e1f (got 'newsletter')"]),
    ("no sendgrid list", MODEL_SOURCE.replace(f"[{UUID}]", "[]"),
     ["{f}:9: destination.sendgrid.list_ids: List should have at least 1 item after validation, not 0"]),
    ("no fields", GOOD.replace("  email: email\n  first_name: first_name\n  properties.tier: tier\n", "  {}\n"),
     ["{f}:6: fields: Dictionary should have at least 1 item after validation, not 0"]),
    ("bad id", GOOD.replace("sync: vip_to_klaviyo", "sync: VIP to Klaviyo"),
     ["{f}:1: sync: expected a lower_snake_case id: letters, digits and _, starting "
      "with a letter (got 'VIP to Klaviyo')"]),
    ("not a mapping", "- sync: x\n", ["{f}:1: a sync file is a YAML mapping (sync:, name:, ...)"]),
    ("not YAML", "sync: x\nname: [unclosed\n",
     ["{f}:3:1: not valid YAML: expected ',' or ']', but got '<stream end>' "
      "(while parsing a flow sequence)"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_sync_files(tmp_path: Path, case: str, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    sync, problems = parse_sync(path)
    assert sync is None
    assert [str(p) for p in problems] == [e.format(f=path) for e in expected]


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("segment: vip", "segment: vips").replace("first_name: first_name", "nom: x")
    _, problems = parse_sync(write(tmp_path, text.replace('"has_email_consent"', '"teir = 1"')))
    assert [(p.line, p.field) for p in problems] == [
        (8, "fields.nom"),  # not a Klaviyo field
        (4, "source.segment"),
        (8, "fields.nom"),  # not a column
        (5, "source.where"),
    ]
    shape = GOOD.replace("mode: mirror", "mode: sync").replace("schedule: 1h", "schedule: 1s")
    _, problems = parse_sync(write(tmp_path, shape.replace("segment: vip", "")))
    assert [p.field for p in problems] == ["source", "mode", "schedule"]


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD, "a.yml")
    second = write(tmp_path, GOOD.replace("list_id: Xy12Ab", "list_id: Other1"), "b.yml")
    write(tmp_path, "not: a sync\n", "_draft.yml")
    assert sync_files(tmp_path) == [first, second]
    problems, checked = validate_syncs([tmp_path])
    assert checked == 2
    assert [str(p) for p in problems] == [
        f"{second}:1: sync: duplicate sync id, also in {first} (got 'vip_to_klaviyo')"
    ]
    with pytest.raises(ConfigError) as raised:
        load_syncs(tmp_path)
    assert str(raised.value) == (
        "invalid sync files (run flowhouse validate):\n"
        f"  {second}:1: sync: duplicate sync id, also in {first} (got 'vip_to_klaviyo')"
    )


def test_validate_takes_folders_and_files(tmp_path: Path) -> None:
    bad = write(tmp_path, GOOD.replace("mode: mirror", "mode: sync"))
    flow = tmp_path / "a_flow.yml"
    flow.write_text("flow: x\n")
    assert validate_syncs([bad])[1] == 1
    assert validate_syncs([flow]) == ([], 0)  # not a sync file: flows check it
    assert validate_syncs([tmp_path / "syncs"])[1] == 1
    assert [p.field for p in validate_syncs([tmp_path, bad])[0]] == ["mode"]
    assert load_syncs(tmp_path / "nothing_here") == []


def test_the_library_sync_files_load() -> None:
    files = sync_files(FLOWS)
    assert [f.name for f in files] == [
        "lapsed_to_ads.yml", "newsletter_to_sendgrid.yml", "vip_to_klaviyo.yml"
    ]  # fmt: skip
    assert validate_syncs([FLOWS]) == ([], 3)
    syncs = {s.sync: s for s in load_syncs(FLOWS)}
    assert {s: (x.target_name, x.mode, x.source.kind) for s, x in syncs.items()} == {
        "vip_to_klaviyo": ("klaviyo", "mirror", "segment"),
        "lapsed_to_ads": ("audience", "mirror", "segment"),
        "newsletter_to_sendgrid": ("sendgrid", "upsert", "list"),
    }
    assert syncs["lapsed_to_ads"].target_options == {"audience": "lapsed_retargeting"}
    for sync in syncs.values():
        assert sync.description and len(sync.description) > 80, sync.sync


def test_json_schema_describes_the_model() -> None:
    schema = json.loads(json_schema())
    assert schema["title"] == "flowhouse sync file"
    assert {"sync", "name", "source", "fields", "destination"} <= set(schema["required"])
    assert schema["properties"]["mode"]["enum"] == ["upsert", "mirror", "add_only"]
    assert Sync.model_json_schema()["properties"].keys() == schema["properties"].keys()
