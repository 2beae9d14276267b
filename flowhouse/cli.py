"""The ``flowhouse`` command line."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from flowhouse import __version__
from flowhouse.activation.deliver import Options
from flowhouse.activation.deliver import send as send_run
from flowhouse.activation.fake.failures import Failures
from flowhouse.activation.fake.server import SECRET_ENV
from flowhouse.activation.fake.server import serve as serve_fake
from flowhouse.activation.fake.settings import WEBHOOK_SECRET, FakeSettings
from flowhouse.activation.fake.webhooks import (
    SENDGRID_PUBLIC_KEY,
    TWILIO_AUTH_TOKEN,
    VONAGE_SIGNATURE_SECRET,
)
from flowhouse.activation.outbox import Bucket, RetryFilter
from flowhouse.activation.providers.base import Secrets
from flowhouse.activation.providers.delivery import delivery_problems, provider_configs
from flowhouse.activation.receiver import ShortLinkAnswers, onsite_access
from flowhouse.activation.receiver import serve as serve_receiver
from flowhouse.activation.receiver import verification as webhook_checks
from flowhouse.activation.sync.run import SyncOptions, run_syncs
from flowhouse.core.build import MARTS, build_models
from flowhouse.core.clock import parse_now, utcnow
from flowhouse.core.errors import ConfigError, FlowhouseError
from flowhouse.core.lanes import LANE_CHOICES, lanes_of, run_lanes
from flowhouse.core.lanes import Options as LaneOptions
from flowhouse.core.paths import DBT_PACKAGE
from flowhouse.core.project import ENV_VAR as PROJECT_ENV
from flowhouse.core.project import Project, current, locate, use
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.corrections import read_ids, retract
from flowhouse.cycle import CycleResult, cycle
from flowhouse.demo import run_demo
from flowhouse.erasure import erase as run_erase
from flowhouse.flows.flowfile import parse_duration
from flowhouse.flows.load import load_flows
from flowhouse.flows.settings import load_settings
from flowhouse.flows.validate import json_schema, validate_paths
from flowhouse.generate import continue_store, generate_store
from flowhouse.load import SHOWN_REJECTS, load_file
from flowhouse.orchestration.engine.backtest import backtest as run_backtest
from flowhouse.orchestration.engine.coupons import add_codes, generate_codes
from flowhouse.orchestration.engine.intent import Approval, markdown, plan_json, read_plan
from flowhouse.orchestration.engine.plan import plan as make_plan
from flowhouse.orchestration.engine.tick import load_deployment
from flowhouse.preview import preview as make_preview
from flowhouse.report import existing, marts_now, write_report
from flowhouse.scaffolding import init_project
from flowhouse.status import lane_lines, render_json, render_lanes, render_text, status_at
from flowhouse.summary import render_summary
from flowhouse.testsend import run_test_send

F = TypeVar("F", bound=Callable[..., Any])

warehouse_option = click.option(
    "--warehouse",
    "warehouse",
    envvar="FLOWHOUSE_WAREHOUSE",
    default="warehouse.duckdb",
    show_default=True,
    metavar="PATH|URL",
    help="A DuckDB file, or a postgresql://user:pass@host:port/db URL (env FLOWHOUSE_WAREHOUSE).",
)


def flows_option(fn: F) -> F:
    return click.option(
        "--flows",
        "flows_dir",
        envvar="FLOWHOUSE_FLOWS",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder of flow files and _settings.yml (env FLOWHOUSE_FLOWS; default: the project's "
        "flows/, or the shipped library outside a project).",
    )(fn)


def _timestamp(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_now(value, option)
    except ConfigError as err:
        raise click.BadParameter(str(err), param_hint=option) from None


def handles_errors(fn: F) -> F:
    """Print ``Error: ...`` and exit 1 for flowhouse's own errors; tracebacks only with --debug."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FlowhouseError as err:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            click.echo(f"Error: {err}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="flowhouse")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option(
    "--project",
    "project_dir",
    envvar=PROJECT_ENV,
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The store's project (made by `flowhouse init`; env FLOWHOUSE_PROJECT; default: the "
    "working folder or the nearest one above it, else the example store).",
)
def cli(debug: bool, project_dir: Path | None) -> None:
    """flowhouse: warehouse-native marketing flows for e-commerce.

    Events, customers and products live in the warehouse; dbt turns them into attributes, segments
    and derived events; flows (YAML in flows/) turn those into messages; every decision is written
    back.

    Commands work on the store's project around the working folder (see `flowhouse init`), or on
    the example store outside one.
    """
    try:
        use(locate(project_dir))
    except ConfigError as err:
        raise click.UsageError(str(err)) from None


@cli.command()
@warehouse_option
@click.option("--customers", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=60, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--start",
    default="2026-09-01T00:00:00",
    show_default=True,
    help="First instant of the generated history (UTC).",
)
@click.option(
    "--continue-until",
    "continue_until",
    default=None,
    metavar="TS",
    help="Append the next window of events, up to TS, to a store generated before.",
)
@handles_errors
def generate(
    warehouse: str,
    customers: int,
    days: int,
    seed: int,
    start: str,
    continue_until: str | None,
) -> None:
    """Generate a realistic synthetic store into raw.events, raw.customers and raw.products.

    Same seed, same data. With --continue-until, append the window after the last one generated
    (new customers, sessions, orders, late-arriving events) so incremental runs can be exercised.
    """
    until = _timestamp(continue_until, "--continue-until")
    begin = _timestamp(start, "--start")

    location = Location.parse(warehouse)
    started = time.perf_counter()
    if until is not None:
        stats = continue_store(location, until)
    else:
        assert begin is not None
        stats = generate_store(location, customers=customers, days=days, seed=seed, start=begin)
    click.echo(stats.describe())
    click.echo(f"in {time.perf_counter() - started:.1f} s -> {location}")


@cli.command()
@warehouse_option
@click.argument(
    "input_name",
    metavar="events|customers|products|device_tokens",
    type=click.Choice(["events", "customers", "products", "device_tokens"]),
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "csv", "parquet", "jsonl"]),
    default="auto",
    show_default=True,
    help="Input format; auto reads it from the file's extension.",
)
@click.option(
    "--mapping",
    default=None,
    metavar="shopify|woocommerce|FILE.yml",
    help="Read a store's own export through a mapping (shipped, or a YAML file of your own).",
)
@click.option(
    "--show",
    "shown",
    type=click.IntRange(min=0),
    default=SHOWN_REJECTS,
    show_default=True,
    help="How many rejects to print (all are in raw.rejects).",
)
@handles_errors
def load(
    warehouse: str, input_name: str, file: Path, fmt: str, mapping: str | None, shown: int
) -> None:
    """Load a CSV, Parquet or JSON Lines FILE into raw.events, raw.customers, raw.products or
    raw.device_tokens (the customers' push registration tokens).

    Columns are read by name, in any order and case. Rows that break the contract go to raw.rejects
    with their row number, field, value and reason; a bad optional customer field (a contact, the
    time zone...) is dropped and the customer kept; good rows are always loaded. Loading the same
    events twice is a no-op (event ids are unique); customers, products and device tokens are
    upserted by key.
    No record vanishes: a timestamp more than 24 hours ahead, a JSON line over 2 MiB or not UTF-8
    is rejected alone; a CSV file whose quote never closes is refused, naming the line.
    Progress goes to stderr.
    """

    def progress(message: str) -> None:
        click.echo(message, err=True)

    report = load_file(Location.parse(warehouse), input_name, file, fmt, mapping, shown, progress)
    click.echo(report.describe())
    if report.problems:
        sys.exit(2)


@cli.command()
@warehouse_option
@click.option("--select", "-s", "select", multiple=True, help="dbt selection (repeatable).")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@click.option("--skip-tests", is_flag=True, help="dbt run instead of dbt build.")
@click.option("--now", "now", default=None, metavar="TS", help="The build's 'now' (dbt var).")
@flows_option
@handles_errors
def build(
    warehouse: str,
    select: tuple[str, ...],
    full_refresh: bool,
    skip_tests: bool,
    now: str | None,
    flows_dir: Path | None,
) -> None:
    """Build the dbt models (staging, attributes, derived events, segments) and run their tests,
    with the store settings of the flows folder (time zone, raw event types, model settings)."""

    location = Location.parse(warehouse)
    at = _timestamp(now, "--now")
    dbt_vars = load_settings(flows_dir or default_flows_dir()).dbt_vars()
    if select:
        summary = build_models(
            location, select=select, full_refresh=full_refresh, tests=not skip_tests, now=at,
            dbt_vars=dbt_vars,
        )  # fmt: skip
    else:  # every model: a run of both lanes, recorded as such
        options = LaneOptions(tests=not skip_tests, full_refresh=full_refresh, artifacts=True)
        summary = run_lanes(location, lanes_of("all"), at, dbt_vars, "build", options).summary()
    click.echo(summary.describe())


@cli.command()
@warehouse_option
@click.option(
    "--lane",
    type=click.Choice(LANE_CHOICES),
    default="all",
    show_default=True,
    help="fast: what a tick decides on; enrichment: category affinity and the marts; all: both.",
)
@click.option("--now", "now", default=None, metavar="TS", help="The models' now (default: now).")
@flows_option
@handles_errors
def refresh(warehouse: str, lane: str, now: str | None, flows_dir: Path | None) -> None:
    """Refresh one lane of the models on its own at --now, without tests, and record the run in
    flowhouse.lane_runs (a tick refreshes the fast lane, and the enrichment lane when
    refresh.enrichment_every has passed; run `--lane enrichment` from cron when it is never)."""
    location = Location.parse(warehouse)
    dbt_vars = load_settings(flows_dir or default_flows_dir()).dbt_vars()
    at = _timestamp(now, "--now") or utcnow()
    report = run_lanes(location, lanes_of(lane), at, dbt_vars, "refresh")
    click.echo(f"refresh at {at:%Y-%m-%d %H:%M:%S}:")
    click.echo("\n".join(report.lines()))
    click.echo(report.summary().describe())


@cli.command()
@warehouse_option
@handles_errors
def summary(warehouse: str) -> None:
    """Print what the warehouse holds: inputs, derived events, attributes, segments."""

    click.echo(render_summary(Location.parse(warehouse)))


@cli.command()
@click.option(
    "--warehouse",
    "warehouse",
    envvar="FLOWHOUSE_WAREHOUSE",
    default="demo/warehouse.duckdb",
    show_default=True,
    metavar="PATH|URL",
    help="Where the demo store is built (replaced if it exists).",
)
@click.option("--customers", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option(
    "--days", type=click.IntRange(min=7), default=23, show_default=True, help="Days of history."
)
@click.option(
    "--simulate-days",
    type=click.IntRange(min=0),
    default=7,
    show_default=True,
    help="Days lived after the flow library goes live (new events, ticks every 4 h).",
)
@click.option("--seed", type=int, default=7, show_default=True)
@handles_errors
def demo(warehouse: str, customers: int, days: int, simulate_days: int, seed: int) -> None:
    """Run the main job end to end on a fresh synthetic store: generate, build, then run the flow
    library through simulated days of ticks and print per-flow counts (always the example store,
    whatever the project)."""
    use(Project.example())

    run_demo(
        Location.parse(warehouse),
        customers=customers,
        days=days,
        seed=seed,
        echo=click.echo,
        simulate_days=simulate_days,
    )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of flow files, used when no PATHS are given (default: flows/).",
)
@handles_errors
def validate(paths: tuple[Path, ...], flows_dir: Path | None) -> None:
    """Check flow files (default: every file in --flows) and report every problem at once.

    Exits 0 when all are valid, 1 otherwise. Each problem names file:line, the field, the value
    received and what was expected.
    """

    targets = list(paths) or [flows_dir or default_flows_dir()]
    problems, checked = validate_paths(targets, checks=[delivery_problems])
    for problem in problems:
        click.echo(str(problem), err=True)
    files = {p.file for p in problems}
    if not checked and not problems:
        click.echo(f"no flow files (*.yml, *.yaml) in {', '.join(map(str, targets))}")
        return
    click.echo(
        f"{checked} flow and sync file(s) checked, {len(files)} with problems, "
        f"{len(problems)} problem(s)"
    )
    if problems:
        sys.exit(1)


def delivery_options(fn: F) -> F:
    """Where and how messages are sent (``send`` and ``tick`` take the same)."""
    options = [
        click.option(
            "--provider-url",
            envvar="FLOWHOUSE_PROVIDER_URL",
            default=None,
            metavar="URL",
            help="Send every destination to this server, the fake provider "
            "(env FLOWHOUSE_PROVIDER_URL); default: each provider's configured API.",
        ),
        click.option(
            "--inbox",
            envvar="FLOWHOUSE_INBOX",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Folder where provider webhooks land; ingested first (env FLOWHOUSE_INBOX).",
        ),
        click.option(
            "--bucket",
            default=None,
            metavar="I/N",
            help="Send only the share I of N of the outbox (parallel senders).",
        ),
        click.option("--limit", type=click.IntRange(min=1), default=None, help="Send at most N."),
        click.option(
            "--workers",
            type=click.IntRange(min=0),
            default=None,
            metavar="N",
            help="Render in N worker processes beside the sending (0: in the sending process); "
            "default: one per core beyond two, for 2,000 due messages or more.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _delivery(
    provider_url: str | None,
    inbox: Path | None,
    bucket: str | None,
    limit: int | None,
    workers: int | None = None,
) -> Options:

    try:
        parsed = Bucket.parse(bucket)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--bucket") from None
    return Options(
        provider_url=provider_url,
        bucket=parsed,
        limit=limit,
        inbox=inbox,
        progress=_progress,
        workers=workers,
    )


def _progress(line: str) -> None:
    click.echo(line, err=True)


#: The exit code of ``send`` and ``tick`` when messages failed for good in the run, or a tick's
#: enrichment lane failed (1 is an error that stopped it, 2 a bad command line).
EXIT_FAILED = 3


def _exit_on_failures(failed: int, lanes: Sequence[str] = ()) -> None:
    if failed:
        click.echo(
            f"{failed} message(s) failed (status failed, with the reason in failure_reason); "
            "flowhouse send --retry-failed requeues them",
            err=True,
        )
    for lane in lanes:
        click.echo(
            f"the {lane} lane of the model refresh failed (see flowhouse.lane_runs and "
            "`flowhouse status`); the fast lane and the engine ran, and the next tick tries again",
            err=True,
        )
    if failed or lanes:
        sys.exit(EXIT_FAILED)


def _lanes_failed(result: CycleResult) -> list[str]:
    refreshed = result.tick.refresh
    return [r.lane for r in refreshed.failed] if refreshed else []


def tick_options(fn: F) -> F:
    """When and how a tick runs (``tick`` and ``apply`` take the same)."""
    options = [
        warehouse_option,
        flows_option,
        click.option(
            "--now", "now", default=None, metavar="TS", help="The tick's time (default: now)."
        ),
        click.option(
            "--no-build", is_flag=True, help="Skip the dbt refresh; use the models as last built."
        ),
        click.option("--no-send", is_flag=True, help="Queue messages but do not send them."),
        delivery_options,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@cli.command()
@tick_options
@click.option(
    "--allow-removals",
    is_flag=True,
    help="Remove flows and steps even where enrollments are in flight (they exit with "
    "flow_removed or step_removed); without it such a tick stops and changes nothing.",
)
@handles_errors
def tick(
    warehouse: str,
    flows_dir: Path | None,
    now: str | None,
    no_build: bool,
    no_send: bool,
    provider_url: str | None,
    inbox: Path | None,
    bucket: str | None,
    limit: int | None,
    workers: int | None,
    allow_removals: bool,
) -> None:
    """Run one engine cycle at --now: ingest provider webhooks, refresh models, enroll new
    triggers, advance every due enrollment, journal each decision, queue messages and send the
    due ones. Rerunning at the same time changes nothing.

    A tick that would remove a flow or step with enrollments in flight stops with the list and
    changes nothing, unless --allow-removals (or `flowhouse apply` of a reviewed plan)."""
    result = cycle(
        Location.parse(warehouse),
        flows_dir or default_flows_dir(),
        now=_timestamp(now, "--now"),
        build=not no_build,
        delivery=None if no_send else _delivery(provider_url, inbox, bucket, limit, workers),
        approval=Approval(everything=allow_removals),
    )
    click.echo(result.describe())
    _exit_on_failures(result.sent.failed if result.sent else 0, _lanes_failed(result))


@cli.command()
@click.argument("plan_file", metavar="PLAN.json", type=click.Path(dir_okay=False, path_type=Path))
@tick_options
@handles_errors
def apply(
    plan_file: Path,
    warehouse: str,
    flows_dir: Path | None,
    now: str | None,
    no_build: bool,
    no_send: bool,
    provider_url: str | None,
    inbox: Path | None,
    bucket: str | None,
    limit: int | None,
    workers: int | None,
) -> None:
    """Run the tick a reviewed plan describes (`flowhouse plan --out PLAN.json`): the removals it
    shows are made, ending the enrollments in flight there. Refused, changing nothing, when the
    flow files changed since the plan was made or they remove more than the plan showed."""
    result = cycle(
        Location.parse(warehouse),
        flows_dir or default_flows_dir(),
        now=_timestamp(now, "--now"),
        build=not no_build,
        delivery=None if no_send else _delivery(provider_url, inbox, bucket, limit, workers),
        approval=Approval(reviewed=read_plan(plan_file)),
    )
    click.echo(f"applied {plan_file}")
    click.echo(result.describe())
    _exit_on_failures(result.sent.failed if result.sent else 0, _lanes_failed(result))


@cli.command()
@warehouse_option
@flows_option
@click.option("--now", "now", default=None, metavar="TS", help="The send's time (default: now).")
@delivery_options
@click.option(
    "--retry-failed",
    is_flag=True,
    help="First requeue failed messages still within their flow's max_lateness (journaled).",
)
@click.option("--flow", "flow_id", default=None, metavar="F", help="--retry-failed: flow F only.")
@click.option(
    "--reason", default=None, metavar="R", help="--retry-failed: reasons containing R only."
)
@click.option(
    "--since", default=None, metavar="TS", help="--retry-failed: failed at or after TS only."
)
@handles_errors
def send(
    warehouse: str,
    flows_dir: Path | None,
    now: str | None,
    provider_url: str | None,
    inbox: Path | None,
    bucket: str | None,
    limit: int | None,
    workers: int | None,
    retry_failed: bool,
    flow_id: str | None,
    reason: str | None,
    since: str | None,
) -> None:
    """Send the due messages: reconcile what a dead run left in flight, claim due rows, check the
    send-time rules again, render, and deliver through each provider with retries; every result
    is written back to flowhouse.messages and flowhouse.send_attempts.

    Exits 0, or 3 when messages failed in the run (1 on an error, such as a missing API key:
    then nothing is claimed)."""
    retry = None
    if retry_failed:
        retry = RetryFilter(flow_id, reason, _timestamp(since, "--since"))
    elif flow_id or reason or since:
        raise click.UsageError("--flow, --reason and --since go with --retry-failed")
    options = _delivery(provider_url, inbox, bucket, limit, workers)
    report = send_run(
        Location.parse(warehouse),
        flows_dir or default_flows_dir(),
        now=_timestamp(now, "--now"),
        options=replace(options, retry=retry),
    )
    click.echo(report.describe())
    _exit_on_failures(report.failed)


@cli.command()
@warehouse_option
@flows_option
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--dry-run", is_flag=True, help="Print what would change; send and write nothing.")
@click.option("--now", "now", default=None, metavar="TS", help="The run's time (default: now).")
@click.option(
    "--provider-url",
    envvar="FLOWHOUSE_PROVIDER_URL",
    default=None,
    metavar="URL",
    help="Send every destination to this server, the fake provider (env FLOWHOUSE_PROVIDER_URL).",
)
@handles_errors
def sync(
    warehouse: str,
    flows_dir: Path | None,
    names: tuple[str, ...],
    dry_run: bool,
    now: str | None,
    provider_url: str | None,
) -> None:
    """Run audience syncs (flows/library/syncs/*.yml; all enabled ones unless NAMEs are given): diff
    each source against what its destination was last told, send only the difference, and log
    every run and row in flowhouse.sync_runs and flowhouse.sync_rows."""

    reports = run_syncs(
        Location.parse(warehouse),
        flows_dir or default_flows_dir(),
        names,
        now=_timestamp(now, "--now"),
        options=SyncOptions(dry_run=dry_run, provider_url=provider_url, progress=_progress),
    )
    for report in reports:
        click.echo(report.describe())
    if not reports:
        click.echo("no syncs to run")


@cli.command("fake-provider")
@click.option("--port", type=click.IntRange(min=1, max=65535), default=8025, show_default=True)
@click.option(
    "--inbox",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the engagement webhooks the providers would send (delivered, opened, ...) here.",
)
@click.option(
    "--record",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Append every accepted message to received.jsonl here.",
)
@click.option(
    "--webhook-url",
    default=None,
    metavar="URL",
    help="Post the engagement webhooks, signed, to this receiver (flowhouse receive) instead of "
    "writing them to --inbox.",
)
@click.option("--rate-limited", type=click.FloatRange(0, 1), default=0.0, help="Share of 429s.")
@click.option("--retry-after", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--server-errors", type=click.FloatRange(0, 1), default=0.0, help="Share of 500s.")
@click.option("--timeouts", type=click.FloatRange(0, 1), default=0.0, help="Share held too long.")
@click.option("--latency-ms", type=click.IntRange(min=0), default=0, help="Added to every answer.")
@click.option("--seed", type=int, default=0, show_default=True)
@handles_errors
def fake_provider(
    port: int,
    inbox: Path | None,
    record: Path | None,
    webhook_url: str | None,
    rate_limited: float,
    retry_after: int,
    server_errors: float,
    timeouts: float,
    latency_ms: int,
    seed: int,
) -> None:
    """Serve SendGrid, Twilio, Klaviyo, webhook and audience endpoints on 127.0.0.1, validating
    every request against the providers' OpenAPI documents and rejecting invalid ones as the real
    APIs would. Send to it with --provider-url http://127.0.0.1:PORT. Inspect what it received at
    /_fake/messages and /_fake/stats."""

    failures = Failures(
        rate_limited=rate_limited,
        retry_after=retry_after,
        server_error=server_errors,
        timeout=timeouts,
        slow=1.0 if latency_ms else 0.0,
        latency_ms=latency_ms,
        seed=seed,
    )
    secret = os.environ.get(SECRET_ENV) or WEBHOOK_SECRET
    settings = FakeSettings(
        failures=failures,
        inbox=inbox,
        record_dir=record,
        webhook_secret=secret,
        webhook_url=webhook_url,
        twilio_auth_token=os.environ.get("TWILIO_AUTH_TOKEN") or TWILIO_AUTH_TOKEN,
        vonage_signature_secret=os.environ.get("VONAGE_SIGNATURE_SECRET")
        or VONAGE_SIGNATURE_SECRET,
    )
    click.echo(f"fake provider on http://127.0.0.1:{port} (Ctrl-C stops it)")
    if webhook_url:
        click.echo(f"posting signed webhooks to {webhook_url}; SendGrid's verification key:")
        click.echo(f"  SENDGRID_WEBHOOK_PUBLIC_KEY={SENDGRID_PUBLIC_KEY}")
    serve_fake("127.0.0.1", port, settings)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(min=1, max=65535), default=8026, show_default=True)
@click.option(
    "--inbox",
    envvar="FLOWHOUSE_INBOX",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where received webhooks are stored for the next send or tick (env FLOWHOUSE_INBOX).",
)
@click.option(
    "--public-url",
    default=None,
    help="This receiver's public URL, as Twilio signs it (needed to verify Twilio callbacks).",
)
@click.option(
    "--unverified",
    multiple=True,
    type=click.Choice(["sendgrid", "twilio", "vonage"]),
    help="Accept this provider's webhooks without checking their signature (only where something "
    "in front already checks them). Repeatable.",
)
@flows_option
@warehouse_option
@handles_errors
def receive(
    host: str,
    port: int,
    inbox: Path,
    public_url: str | None,
    unverified: tuple[str, ...],
    flows_dir: Path | None,
    warehouse: str,
) -> None:
    """Receive provider webhooks (SendGrid events at /webhooks/sendgrid, checked with
    SENDGRID_WEBHOOK_PUBLIC_KEY; Twilio status callbacks at /webhooks/twilio, checked with
    TWILIO_AUTH_TOKEN; Vonage status webhooks at /webhooks/vonage, checked with
    VONAGE_SIGNATURE_SECRET) and one-click unsubscribes from signed links (/unsubscribe), storing
    each in the inbox; `flowhouse send` and `tick` ingest it. Without SendGrid's or Twilio's key it
    does not start, unless --unverified names the provider; without Vonage's it refuses Vonage's
    posts. With FLOWHOUSE_ONSITE_SECRET set, a storefront polls a customer's onsite messages at
    /onsite/messages (a signed customer token) and posts seen and dismissed back."""

    settings = load_settings(flows_dir or default_flows_dir())
    secrets = Secrets()
    key = secrets.get(settings.delivery.signing_key_env, "the key that signs unsubscribe links")
    configs = provider_configs(settings)
    checks = webhook_checks(configs, None, unverified, public_url)
    onsite = onsite_access(configs, Location.parse(warehouse))
    click.echo(f"receiving webhooks on http://{host}:{port}, storing them in {inbox}")
    for name in sorted(checks.unverified):
        click.echo(f"warning: {name} webhooks are accepted without checking their signature")
    if checks.vonage_signature_secret is None and "vonage" not in checks.unverified:
        click.echo("note: Vonage webhooks are refused (set VONAGE_SIGNATURE_SECRET to accept them)")
    if onsite is None:
        click.echo(f"onsite messages: off ({configs.onsite.secret_env} is not set)")
    answers = ShortLinkAnswers(settings.delivery.sms_link_days, settings.store.url)
    serve_receiver(host, port, inbox, key, checks, onsite, answers)


_PLAN_FORMATS = {".json": "json", ".md": "markdown", ".markdown": "markdown"}


@cli.command()
@warehouse_option
@flows_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default=None,
    help="text (default), markdown (for a pull-request comment) or json (for flowhouse apply); "
    "with --out, taken from its extension (.json, .md) unless given.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the plan to this file (plan.json for `flowhouse apply`, plan.md for review).",
)
@handles_errors
def plan(warehouse: str, flows_dir: Path | None, fmt: str | None, out: Path | None) -> None:
    """Show what the flow files change against what is deployed: new, changed, removed, paused
    and resumed flows and steps, drafts, and what the next tick does with the enrollments in
    flight. Removals that end enrollments in flight need `flowhouse apply` of this plan (written
    with --out plan.json) or `flowhouse tick --allow-removals`."""

    flows, _ = load_deployment(flows_dir or default_flows_dir())
    location = Location.parse(warehouse)
    with Warehouse.open(location, read_only=location.dialect == "duckdb") as wh:
        plans = make_plan(wh, flows)
    if out is not None and fmt is None:
        fmt = _PLAN_FORMATS.get(out.suffix.lower())
        if fmt is None:
            raise ConfigError(
                "--out: cannot tell the plan's format from the file name; give --format",
                value=str(out),
                expected="a file ending in .json, .md or .markdown",
            )
    if fmt == "json":
        text = plan_json(plans, flows, utcnow())
    elif fmt == "markdown":
        text = markdown(plans, flows)
    else:
        lines = [line for p in plans for line in p.lines()]
        changed = sum(p.changes for p in plans)
        text = "\n".join([*lines, f"{len(plans)} flow(s), {changed} to change at the next tick"])
    if out is None:
        click.echo(text)
        return
    out.write_text(text + "\n")
    click.echo(f"wrote {out}")


@cli.command()
@warehouse_option
@flows_option
@click.argument("flow_id")
@click.option("--from", "start", required=True, metavar="TS", help="When the flow goes live.")
@click.option("--to", "end", required=True, metavar="TS", help="The last tick.")
@click.option("--every", default="1h", show_default=True, help="Tick cadence (a duration).")
@click.option("--ignore-winners", is_flag=True,
              help="Run splits on their weights, not on production's winners.")  # fmt: skip
@handles_errors
def backtest(
    warehouse: str,
    flows_dir: Path | None,
    flow_id: str,
    start: str,
    end: str,
    every: str,
    ignore_winners: bool,
) -> None:
    """Run FLOW_ID over past events, sending nothing, and report enrollments, messages per step,
    skips by reason and goal conversions (in the scratch schema flowhouse_backtest). A split
    whose winner production decided routes new entrants to it, as the live tick does, unless
    --ignore-winners."""

    flows, settings = load_flows(flows_dir or default_flows_dir())
    flow = next((f for f in flows if f.id == flow_id), None)
    if flow is None:
        raise ConfigError(
            "unknown flow", value=flow_id, expected=", ".join(sorted(f.id for f in flows))
        )
    try:
        cadence = parse_duration(every)
    except ValueError as err:
        raise ConfigError(str(err), value=every) from err
    begin, finish = _timestamp(start, "--from"), _timestamp(end, "--to")
    assert begin is not None
    assert finish is not None
    with Warehouse.open(Location.parse(warehouse)) as wh:
        report = run_backtest(
            wh, flow, settings, begin, finish, cadence, echo=click.echo,
            production_winners=not ignore_winners,
        )  # fmt: skip
    for line in report.lines():
        click.echo(line)


@cli.command()
@warehouse_option
@click.argument("flow_id", metavar="[FLOW]", required=False)
@click.option("--customer", "customer_id", default=None, metavar="ID", help="The customer.")
@click.option("--json", "as_json", is_flag=True, help="Print the same facts as JSON.")
@click.option("--now", "now", default=None, metavar="TS", help="Ages as of TS (default: now).")
@flows_option
@handles_errors
def status(
    warehouse: str,
    flow_id: str | None,
    customer_id: str | None,
    as_json: bool,
    now: str | None,
    flows_dir: Path | None,
) -> None:
    """Without FLOW: the model refresh's lanes, each one's last success and its age (STALE when
    older than twice its interval) and its last failure. With FLOW --customer ID: where the
    customer is in FLOW and every decision on the way, with its reason in words: each trigger
    (enrolled or refused), the holdout group and split arms, the state now, and each step's
    decision with its message's delivery and engagement. Addresses are masked."""

    if flow_id is None:
        at = _timestamp(now, "--now") or utcnow()
        every = load_settings(flows_dir or default_flows_dir()).refresh.enrichment_every
        lanes = lane_lines(Location.parse(warehouse), every, at)
        click.echo(render_lanes(lanes, at, color=sys.stdout.isatty()))
        return
    if customer_id is None:
        raise click.UsageError("FLOW needs --customer ID (without FLOW: the refresh lanes)")
    found = status_at(Location.parse(warehouse), flow_id, customer_id)
    click.echo(render_json(found) if as_json else render_text(found))


@cli.command()
@warehouse_option
@flows_option
@click.argument("flow_id", metavar="FLOW")
@click.option("--customer", "customer_id", required=True, metavar="ID", help="The customer.")
@click.option(
    "--trigger",
    "trigger",
    default=None,
    metavar="EVENT_ID",
    help="The trigger event (default: the customer's latest event of the flow's trigger type).",
)
@click.option("--step", default=None, metavar="S", help="Render only this send or action step.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for index.html and the rendered steps (default: preview/FLOW/CUSTOMER/).",
)
@handles_errors
def preview(
    warehouse: str,
    flows_dir: Path | None,
    flow_id: str,
    customer_id: str,
    trigger: str | None,
    step: str | None,
    out: Path | None,
) -> None:
    """Render every message and action of FLOW for one customer, as sending would, into files a
    browser opens, and print the path the customer would take from the trigger, each decision
    with its reason (the real engine in the scratch schema flowhouse_preview; nothing is sent and
    the live state is untouched)."""

    found = make_preview(
        Location.parse(warehouse),
        flows_dir or default_flows_dir(),
        flow_id,
        customer_id,
        trigger=trigger,
        step=step,
        out=out,
    )
    for line in found.lines():
        click.echo(line)


@cli.command("test-send")
@warehouse_option
@flows_option
@click.argument("flow_id", metavar="FLOW")
@click.option(
    "--to",
    "to",
    multiple=True,
    required=True,
    metavar="ADDRESS",
    help="Seed address: an e-mail address for e-mail steps, a phone number for SMS steps "
    "(give --to twice for both).",
)
@click.option("--step", default=None, metavar="S", help="Send only this step.")
@click.option(
    "--customer",
    "customer_id",
    default=None,
    metavar="ID",
    help="Whose data personalises the messages (default: the customer of the flow's latest "
    "trigger event).",
)
@click.option(
    "--provider-url",
    envvar="FLOWHOUSE_PROVIDER_URL",
    default=None,
    metavar="URL",
    help="Send every destination to this server, the fake provider (env FLOWHOUSE_PROVIDER_URL).",
)
@handles_errors
def test_send(
    warehouse: str,
    flows_dir: Path | None,
    flow_id: str,
    to: tuple[str, ...],
    step: str | None,
    customer_id: str | None,
    provider_url: str | None,
) -> None:
    """Send FLOW's e-mail and SMS messages, rendered as `flowhouse preview` renders them, to a
    seed address through the configured destinations, marked as tests ([TEST] subject, category
    flowhouse_test). Recorded in flowhouse.test_sends, never in flowhouse.messages: the marts,
    caps and smart sending never count them."""

    report = run_test_send(
        Location.parse(warehouse),
        flows_dir or default_flows_dir(),
        flow_id,
        to,
        step=step,
        customer_id=customer_id,
        provider_url=provider_url,
    )
    for line in report.lines():
        click.echo(line)
    if any(s.status != "sent" for s in report.sent):
        sys.exit(1)


@cli.command()
@warehouse_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("report"),
    show_default=True,
    help="Folder to write index.html into (created if missing).",
)
@click.option("--currency", default="$", show_default=True, help="Symbol shown before money.")
@click.option(
    "--build/--no-build",
    default=True,
    show_default=True,
    help="Build the performance marts (dbt, tag:marts, with their tests) first.",
)
@flows_option
@handles_errors
def report(warehouse: str, out: Path, currency: str, build: bool, flows_dir: Path | None) -> None:
    """Write a static HTML report of flow performance for marketers: every live flow's diagram
    with counts on each step and path, charts over time, A/B and holdout results in plain words,
    and skip and exit reasons. One self-contained file, readable offline."""

    location = existing(warehouse)
    if build:
        settings = load_settings(flows_dir or default_flows_dir())
        now = marts_now(location)
        built = build_models(location, now=now, select=[MARTS], dbt_vars=settings.dbt_vars())
        click.echo(built.describe())
    path = write_report(location, out, currency=currency)
    click.echo(f"wrote {path}")


@cli.group()
def coupons() -> None:
    """Coupon pools: the codes coupon actions and coupon sends hand out."""


@coupons.command("add")
@warehouse_option
@click.argument("pool")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--generate", "count", type=click.IntRange(min=1), default=None)
@click.option("--prefix", default="", help="Prefix of generated codes.")
@handles_errors
def coupons_add(
    warehouse: str, pool: str, file: Path | None, count: int | None, prefix: str
) -> None:
    """Add codes to POOL: one per line from --file, or --generate N codes."""

    if (file is None) == (count is None):
        raise ConfigError("give either --file or --generate")
    now = utcnow()
    with Warehouse.open(Location.parse(warehouse)) as wh:
        if file is not None:
            n = add_codes(wh, pool, file, now)
        else:
            assert count is not None
            n = generate_codes(wh, pool, count, now, prefix)
    click.echo(f"added {n} code(s) to pool {pool}")


@cli.group()
def events() -> None:
    """Corrections to loaded events (docs/events.md, "Corrections")."""


@events.command("retract")
@warehouse_option
@click.argument("event_ids", nargs=-1, metavar="EVENT_ID...")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="More event ids, one a line.")  # fmt: skip
@click.option("--reason", required=True, help="Why the events are retracted (kept with them).")
@handles_errors
def events_retract(
    warehouse: str, event_ids: tuple[str, ...], file: Path | None, reason: str
) -> None:
    """Move events out of raw.events into raw.retracted_events (the row, the reason, when), so
    that a corrected version can be loaded with the same id. A correction is a retraction, then
    the corrected event loaded with the same id. Unknown ids are listed; exits 1 if none matched."""

    ids = [*event_ids, *(read_ids(file, "event id") if file else [])]
    report = retract(Location.parse(warehouse), ids, reason, utcnow())
    click.echo(report.describe())
    if not report.retracted:
        click.echo("Error: none of the event ids is in raw.events", err=True)
        sys.exit(1)


@cli.command()
@warehouse_option
@click.option("--customer", "customer_ids", multiple=True, metavar="ID",
              help="A customer to erase (repeatable).")  # fmt: skip
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="More customer ids, one a line.")  # fmt: skip
@click.option("--inbox", envvar="FLOWHOUSE_INBOX", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="The receiver's inbox: its SMS short links (links/) of the erased customers "
              "go too (env FLOWHOUSE_INBOX).")  # fmt: skip
@handles_errors
def erase(
    warehouse: str, customer_ids: tuple[str, ...], file: Path | None, inbox: Path | None
) -> None:
    """Erase customers (GDPR): delete their raw rows, anonymise the engine's and the marts' rows,
    skip their queued messages, and suppress them for good; a mirror sync removes them from its
    destination on its next run; with --inbox, their SMS short links go (docs/privacy.md). One
    transaction. Without ids, erases again whatever the warehouse got back about customers
    erased before."""

    ids = [*customer_ids, *(read_ids(file, "customer id") if file else [])]
    report = run_erase(Location.parse(warehouse), ids, utcnow(), inbox)
    click.echo(report.describe())
    if report.unreadable_links:
        raise FlowhouseError(
            f"{len(report.unreadable_links)} line(s) of {inbox}/links/ could not be checked "
            "for the erased customers (listed above); the rest is erased"
        )


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def schema(out: Path | None) -> None:
    """Print (or write to --out) the JSON Schema of flow files, for editor completion and checks."""

    text = json_schema()
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n")
        click.echo(f"wrote {out}")


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default=None, help="The dbt project's name (default: from the folder's).")
@click.option("--title", default=None, help="The store's name in the settings and templates.")
@handles_errors
def init(directory: Path, name: str | None, title: str | None) -> None:
    """Create a store's own project in DIRECTORY: flows, a dbt project on flowhouse's dbt package,
    the mapping of the store's tables, a Dagster code location and a README."""
    click.echo(init_project(directory, name, title).describe())


@cli.command("dbt-package")
def dbt_package() -> None:
    """Print the folder of flowhouse's dbt package (for FLOWHOUSE_DBT_PACKAGE when running dbt
    yourself)."""
    click.echo(str(DBT_PACKAGE))


def default_flows_dir() -> Path:
    return current().flows_dir


def main() -> None:
    cli(prog_name="flowhouse")


if __name__ == "__main__":
    main()
