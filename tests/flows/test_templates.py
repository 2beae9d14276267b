"""Message templates: the render context, the sandbox, and the checks validate runs on each one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from flowhouse.core.paths import CHECKOUT, FLOWS
from flowhouse.flows.flowfile import Flow, Message
from flowhouse.flows.settings import Settings, Store
from flowhouse.flows.templating import (
    LAYOUT,
    check_template,
    context_variables,
    render,
    render_context,
    template_environment,
)
from flowhouse.flows.validate import validate_paths

GOOD_EMAIL = """\
{% extends "_layout.html.j2" %}
{% block body %}
<p>Hi {{ customer.first_name or "there" }},</p>
{% for p in products %}<a href="{{ p.url | with_utm }}">{{ p.name }}</a>{% endfor %}
{% set item = product(event.sku) %}{% if item %}{{ item.name }}{% endif %}
{% endblock %}
"""


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A templates folder holding the shipped layout and one good e-mail."""
    folder = tmp_path / "templates"
    (folder / "t").mkdir(parents=True)
    shutil.copy(FLOWS / "templates" / LAYOUT, folder / LAYOUT)
    (folder / "t" / "good.html.j2").write_text(GOOD_EMAIL)
    return folder


def put(folder: Path, name: str, text: str) -> str:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return name


# (case, file name, text (None: no file), has_coupon, channel, expected problem)
BAD = [
    ("syntax error", "t/x.html.j2", '{% extends "_layout.html.j2" %}\n{% block body %}{{ x }\n',
     False, "email", "t/x.html.j2:2: syntax error: unexpected '}'"),
    ("unknown filter", "t/x.txt.j2", "Hi {{ customer.first_name | shout }}", False, "sms",
     "t/x.txt.j2:1: syntax error: No filter named 'shout'"),
    ("undefined variable", "t/x.txt.j2", "Hi\n{{ custmer.first_name }}", False, "sms",
     "t/x.txt.j2:2: undefined variable 'custmer'; did you mean customer?"),
    ("coupon without a pool", "t/x.txt.j2", "Use {{ coupon.code }}", False, "sms",
     "t/x.txt.j2:1: coupon is only defined when the send step names a coupon_pool"),
    ("unknown customer attribute", "t/x.txt.j2", "Hi {{ customer.frist_name }}", False, "sms",
     "t/x.txt.j2:1: unknown attribute customer.frist_name; did you mean first_name?"),
    ("unknown attribute by subscript", "t/x.txt.j2", "{{ customer['teir'] }}", False, "sms",
     "t/x.txt.j2:1: unknown attribute customer.teir; did you mean tier?"),
    ("bookkeeping column of the attributes' table", "t/x.txt.j2", "{{ customer.loaded_through }}",
     False, "sms", "t/x.txt.j2:1: unknown attribute customer.loaded_through"),
    ("unknown coupon attribute", "t/x.txt.j2", "{{ coupon.cod }}", True, "sms",
     "t/x.txt.j2:1: unknown attribute coupon.cod; did you mean code?"),
    ("unknown product attribute in a loop", "t/x.txt.j2",
     "{% for p in products %}\n{{ p.nmae }}{% endfor %}", False, "sms",
     "t/x.txt.j2:2: unknown attribute p.nmae; did you mean name?"),
    ("unknown attribute of product(sku)", "t/x.txt.j2",
     "{% set p = product(event.sku) %}{{ p.prise }}", False, "sms",
     "t/x.txt.j2:1: unknown attribute p.prise; did you mean price?"),
    ("unknown attribute of products[0]", "t/x.txt.j2",
     "{% if products %}{% set pick = products[0] %}{{ pick.nmae }}{% endif %}", False, "sms",
     "t/x.txt.j2:1: unknown attribute pick.nmae; did you mean name?"),
    ("missing file", "t/nope.html.j2", None, False, "email", "t/nope.html.j2: no such template"),
    ("missing layout", "t/x.html.j2", '{% extends "_base.html.j2" %}', False, "email",
     "_base.html.j2: no such template (used by t/x.html.j2)"),
    ("marketing e-mail without the layout", "t/x.html.j2", "<p>Hi {{ customer.first_name }}</p>",
     False, "email", "t/x.html.j2: a marketing e-mail must carry an unsubscribe link ({{ links.unsubscribe }}), "
     "the postal address ({{ sender.postal_address }}), UTM parameters (the with_utm filter); "
     'extend the shared layout ({% extends "_layout.html.j2" %}) to get them all'),
    ("marketing e-mail replacing the footer", "t/x.html.j2",
     '{% extends "_layout.html.j2" %}{% block footer %}Bye{% endblock %}', False, "email",
     "t/x.html.j2: a marketing e-mail must carry an unsubscribe link ({{ links.unsubscribe }}); "),
    ("e-mail body as text", "t/x.txt.j2", "Hi", False, "email",
     "t/x.txt.j2: email templates end in .html.j2"),
    ("sms as html", "t/x.html.j2", "Hi", False, "sms", "t/x.html.j2: sms templates end in .txt.j2"),
    ("computed template name", "t/x.txt.j2", "{% include event.partial %}", False, "sms",
     "t/x.txt.j2: name templates in extends and include literally"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "name", "text", "has_coupon", "channel", "expected"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_templates(
    templates: Path,
    case: str,
    name: str,
    text: str | None,
    has_coupon: bool,
    channel: str,
    expected: str,
) -> None:
    if text is not None:
        put(templates, name, text)
    problems = check_template(templates, name, has_coupon=has_coupon, channel=channel)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_a_good_template_passes(templates: Path) -> None:
    assert check_template(templates, "t/good.html.j2", has_coupon=False, channel="email") == []


@pytest.mark.parametrize(
    ("text", "has_coupon", "transactional"),
    [
        ("{{ coupon.code }} until {{ coupon.expires_at | date }}", True, False),
        ("{% if coupon is defined %}{{ coupon.code }}{% endif %}", False, False),
        ("{% set customer = event %}{{ customer.anything }}", False, False),
        (
            "{% for p in event.lines %}{{ p.quantity }}{% endfor %}{{ event.whatever }}",
            False,
            False,
        ),
        (
            "{% set p = product(event.sku) %}{% for p in event.lines %}{{ p.quantity }}{% endfor %}",
            False,
            False,
        ),
        ("{% for p in products %}{% set p = event %}{{ p.quantity }}{% endfor %}", False, False),
        ("<p>Receipt for {{ event.order_id }}</p>", False, True),
    ],
    ids=[
        "coupon with a pool",
        "coupon guarded",
        "shadowed name",
        "event is open",
        "loop rebinds a name",
        "set rebinds a name",
        "transactional",
    ],
)
def test_templates_that_pass(
    templates: Path, text: str, has_coupon: bool, transactional: bool
) -> None:
    body = (
        text
        if transactional
        else f'{{% extends "{LAYOUT}" %}}{{% block body %}}{text}{{% endblock %}}'
    )
    name = put(templates, "t/ok.html.j2", body)
    assert (
        check_template(
            templates, name, has_coupon=has_coupon, channel="email", transactional=transactional
        )
        == []
    )


def test_the_layout_footer_can_call_super(templates: Path) -> None:
    text = '{% extends "_layout.html.j2" %}{% block footer %}{{ super() }}Thanks!{% endblock %}'
    name = put(templates, "t/super.html.j2", text)
    assert check_template(templates, name, has_coupon=False, channel="email") == []


def _context(**overrides: object) -> dict[str, object]:
    flow = Flow.model_validate(
        {"flow": "cart_abandonment", "name": "Cart", "trigger": {"event": "cart_abandoned"},
         "steps": [{"id": "reminder", "send": {"channel": "email", "template": "t/good.html.j2"}}]}
    )  # fmt: skip
    settings = Settings(store=Store(name="Acme & Co", url="https://acme.example/?ref=x#top",
                                    postal_address="1 Main St, Springfield"))  # fmt: skip
    values: dict[str, object] = {
        "flow": flow,
        "step_id": "reminder",
        "settings": settings,
        "message": Message.model_validate(
            {"channel": "email", "template": "t/good.html.j2", "subject": "Your cart"}
        ),
        "customer": {"first_name": None},
        "event": {"sku": "s1"},
        "links": {"unsubscribe": "https://acme.example/u/abc",
                  "preferences": "https://acme.example/p"},
        "products": [{"sku": "s2", "name": "<b>Mug</b>", "url": "https://acme.example/s2",
                      "image_url": "https://img.example/s2.jpg", "price": 12.5}],
        "catalog": {"s1": {"sku": "s1", "name": "Teapot", "url": "https://acme.example/s1",
                           "image_url": "https://img.example/s1.jpg", "price": 30}},
    }  # fmt: skip
    values.update(overrides)
    return render_context(**values)  # type: ignore[arg-type]


def test_rendered_marketing_email_carries_unsubscribe_address_and_utm(templates: Path) -> None:
    html = render(templates, "t/good.html.j2", _context())
    assert 'href="https://acme.example/u/abc"' in html
    assert "1 Main St, Springfield" in html
    utm = "utm_source=flowhouse&amp;utm_medium=email&amp;utm_campaign=cart_abandonment&amp;utm_content=reminder"
    assert f'href="https://acme.example/?ref=x&amp;{utm}#top"' in html
    assert f'href="https://acme.example/s2?{utm}"' in html
    assert "Hi there," in html, "a null first name prints as nothing"
    assert "&lt;b&gt;Mug&lt;/b&gt;" in html and "Acme &amp; Co" in html
    assert "Teapot" in html


def test_text_templates_are_not_escaped_and_undefined_names_fail(templates: Path) -> None:
    put(templates, "t/sms.txt.j2", "{{ products[0].name }} & {{ coupon.code }}")
    assert render(templates, "t/sms.txt.j2", _context(coupon={"code": "C1"})) == "<b>Mug</b> & C1"
    with pytest.raises(UndefinedError):
        render(templates, "t/sms.txt.j2", _context())


def test_the_sandbox_refuses_escapes(templates: Path) -> None:
    env = template_environment(templates)
    with pytest.raises(SecurityError):
        env.from_string("{{ customer.__class__.__mro__ }}").render(_context())
    with pytest.raises(SecurityError):
        env.from_string("{{ products.append(1) }}").render(_context())


FLOW = """\
flow: reminder
name: Reminder
trigger:
  event: browse_abandoned
steps:
  - id: wait_1h
    wait: 1h
  - id: reminder
    send:
      channel: email
      template: t/bad.html.j2
      coupon_pool: cart10
"""


def _flows_dir(tmp_path: Path, templates: Path, settings: str) -> Path:
    (tmp_path / "_settings.yml").write_text(settings)
    put(
        templates, "t/bad.html.j2", GOOD_EMAIL.replace("customer.first_name", "customer.frist_name")
    )
    (tmp_path / "reminder.yml").write_text(FLOW)
    return tmp_path


def test_validate_reports_template_problems_at_the_send_step(
    tmp_path: Path, templates: Path
) -> None:
    folder = _flows_dir(tmp_path, templates, "store: {postal_address: 1 Main St}\n")
    problems, checked = validate_paths([folder])
    assert checked == 1
    found = {(p.line, p.field, p.message, p.value) for p in problems}
    assert found == {
        (11, "steps.1.send.template",
         "template t/bad.html.j2:3: unknown attribute customer.frist_name; did you mean first_name?", None),
        (12, "steps.1.send.coupon_pool",
         "no such coupon pool in _settings.yml (pools: none yet)", "cart10"),
    }  # fmt: skip


def test_validate_asks_for_a_postal_address_and_reports_bad_settings(
    tmp_path: Path, templates: Path
) -> None:
    folder = _flows_dir(tmp_path, templates, "coupon_pools: {cart10: {discount: 10%}}\n")
    problems, _ = validate_paths([folder])
    assert any(p.line == 9 and "needs a postal address" in p.message for p in problems), problems
    (folder / "_settings.yml").write_text("quiet_hours:\n  email: {start: '25:00', end: '08:00'}\n")
    problems, _ = validate_paths([folder])
    bad = [p for p in problems if p.file.endswith("_settings.yml")]
    assert [(p.line, p.field) for p in bad] == [(2, "quiet_hours.email.start")], problems


def test_every_context_variable_is_documented() -> None:
    doc = (CHECKOUT / "docs" / "flows.md").read_text()
    missing = [name for name in context_variables() if f"`{name}" not in doc]
    assert missing == []
