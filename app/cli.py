"""The `fieldsync` admin command: migrate, serve, import regions, create users, seed the demo,
back up and restore."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import ConfigurationError, get_settings
from app.core.db import gather_statistics, make_engine, make_sessionmaker, redacted_url
from app.core.logging import configure_logging
from app.simulator.phone import Plan
from app.simulator.run import SLOW_LINK, Config
from app.wiring import assemble

cli = typer.Typer(help="fieldsync administration", no_args_is_help=True, add_completion=False)
T = TypeVar("T")


@cli.callback()
def _assemble() -> None:
    """fieldsync administration"""
    assemble()


def _run_in_session(work: Callable[[AsyncSession], Awaitable[T]], *, load: bool = False) -> T:
    """Run `work` in one transaction: committed if it returns, rolled back if it raises.

    `load`: the work loads data in bulk; the planner's statistics are gathered after it.
    """

    async def _main() -> T:
        settings = get_settings()
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                result = await work(session)
            if load:
                await _gather_statistics(engine)
            return result
        finally:
            await engine.dispose()

    return asyncio.run(_main())


async def _gather_statistics(engine: AsyncEngine) -> None:
    if await gather_statistics(engine):
        typer.echo("planner statistics gathered (ANALYZE)", err=True)


class _Abort(Exception):
    """Roll the transaction back and exit with an error."""


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Upgrade the database schema (run at every deploy)."""
    from app.core import migrations

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(revision=revision)

    async def analyze() -> None:
        engine = make_engine(settings)
        try:
            await _gather_statistics(engine)
        finally:
            await engine.dispose()

    asyncio.run(analyze())
    typer.echo(f"database at {revision}: {redacted_url(settings.effective_database_url)}")


@cli.command()
def serve(
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    host: Annotated[
        str | None,
        typer.Option(
            help="Listen on this address (0.0.0.0: every network); default FIELDSYNC_HOST"
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Listen on this port; default FIELDSYNC_PORT"),
    ] = None,
) -> None:
    """Serve the API (host and port from FIELDSYNC_HOST / FIELDSYNC_PORT unless given)."""
    import uvicorn

    from app.core.server import IdleTimeoutHttpToolsProtocol, exit_cleanly_on_sigterm

    settings = get_settings()
    host = settings.host if host is None else host
    port = settings.port if port is None else port
    configure_logging(settings.log_level)
    try:
        settings.signing_key  # noqa: B018
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"fieldsync on http://{host}:{port}  (API docs: /docs)")
    exit_cleanly_on_sigterm()
    uvicorn.run(
        "app.main:create_app",
        http=IdleTimeoutHttpToolsProtocol,  # uvicorn's, closing clients that stop mid-request
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        access_log=False,  # our own access log leaves query strings out (they may hold names)
        server_header=False,  # no `Server: uvicorn`: nothing to tell a scanner
        # X-Forwarded-For only from the configured proxies (uvicorn would trust any loopback).
        proxy_headers=bool(settings.trusted_proxies.strip()),
        forwarded_allow_ips=settings.trusted_proxies.strip() or None,
        log_level=settings.log_level.lower(),
        # SIGTERM: requests in flight get this long (the app's lifespan turns readiness off).
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
    )


@cli.command("import-regions")
def import_regions(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV file")
    ],
) -> None:
    """Load divisions from CSV (code,name,parent_code,rural_population); safe to run again."""
    from app.regions import service

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        typer.echo(
            f"error: {file} is not UTF-8 text: save it as CSV UTF-8 (逗号分隔, UTF-8)", err=True
        )
        raise typer.Exit(1) from None

    def progress(done: int, total: int) -> None:
        typer.echo(f"  {done}/{total} rows", err=True)

    async def work(session: AsyncSession) -> service.ImportReport:
        report = await service.import_regions(session, text=text, progress=progress)
        if report.errors:
            raise _Abort(report)
        return report

    try:
        report = _run_in_session(work, load=True)
    except _Abort as abort:
        failed: service.ImportReport = abort.args[0]
        for error in failed.errors[:50]:
            typer.echo(f"error: {error}", err=True)
        if len(failed.errors) > 50:
            typer.echo(f"… and {len(failed.errors) - 50} more errors", err=True)
        typer.echo("nothing was imported", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"regions: {report.created} created, {report.updated} updated, {report.unchanged} unchanged"
    )


@cli.command("import-alerts")
def import_alerts(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or XLSX file")
    ],
    county: Annotated[str, typer.Option(help="County code the list is matched against")],
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Username of a county admin of the county, recorded as the importer; "
            "default: the county's first active county admin by username",
        ),
    ] = None,
) -> None:
    """Import a department's list (department,id_number,kind,amount,occurred_on,note) as alerts.

    Rows matching a current member of a household under the county become open alerts; a file
    imported again adds nothing. Bad rows are reported and skipped; an unreadable file imports
    nothing (exit 1).
    """
    from types import SimpleNamespace

    from sqlmodel import col, select

    from app.core.db import transaction
    from app.monitoring import alerts
    from app.monitoring.alert_import import AlertFileUnreadable, read_alert_file
    from app.monitoring.alerts_schemas import AlertImportReport
    from app.regions import codes
    from app.regions.models import Region
    from app.users.models import Role, User, UserRegion

    settings = get_settings()
    try:
        if codes.level_of(county) is not codes.Level.county:
            raise codes.InvalidCode(f"{county} is not a county code")
    except codes.InvalidCode as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    with file.open("rb") as stream:  # no more than one byte past the limit
        data = stream.read(settings.alert_import_max_bytes + 1)
    try:
        parsed = read_alert_file(
            data,
            filename=file.name,
            today=alerts.local_today(),
            max_bytes=settings.alert_import_max_bytes,
        )
    except AlertFileUnreadable as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        typer.echo("nothing was imported", err=True)
        raise typer.Exit(1) from None
    del data
    typer.echo(f"  {parsed.read} rows read ({parsed.format}), {parsed.rejected} rejected", err=True)

    shown = 0

    def progress(counts: alerts.ImportCounts) -> None:
        nonlocal shown
        # Every 10,000 rows and at the end: enough to see it move, not a line per chunk.
        if counts.checked - shown < 10_000 and counts.checked < counts.valid:
            return
        shown = counts.checked
        typer.echo(
            f"  {counts.checked}/{counts.valid} valid rows checked: {counts.matched} matched, "
            f"{counts.unmatched} unmatched, {counts.duplicate} duplicate",
            err=True,
        )

    async def importer(session: AsyncSession) -> User:
        if await session.get(Region, county) is None:
            raise _Abort(f"region {county} does not exist: import the regions first")
        if as_user is None:
            user = await alerts.default_importer(session, county)
            if user is None:
                raise _Abort(f"county {county} has no active county admin: create one or use --as")
            return user
        user = await session.scalar(
            select(User)
            .join(UserRegion, col(UserRegion.user_id) == User.id)
            .where(
                col(User.username) == as_user,
                col(User.role) == Role.county_admin.value,
                col(User.is_active).is_(True),
                col(UserRegion.region_code) == county,
            )
        )
        if user is None:
            raise _Abort(f"{as_user} is not an active county admin of {county}")
        return user

    async def _main() -> tuple[str, AlertImportReport]:
        engine = make_engine(settings)
        state = SimpleNamespace(sessionmaker=make_sessionmaker(engine))
        try:
            async with transaction(state, writing=False) as session:
                user = await importer(session)
            job = alerts.begin_import(parsed, county_code=county, actor_id=user.id)
            parsed.rows.clear()  # the job holds the rows still to store
            progress(job.counts)
            # A transaction (holding the write lock, as the API's writes do) per 10,000 rows:
            # the API keeps writing in between. Stopped half way, the import is simply run
            # again: rows stored already count as duplicates.
            while not job.done:
                async with transaction(state, writing=True) as session:
                    await alerts.import_rows(session, job, limit=10_000, progress=progress)
            await _gather_statistics(engine)
            return user.username, job.counts.report(county)
        finally:
            await engine.dispose()

    try:
        username, report = asyncio.run(_main())
    except _Abort as abort:
        typer.echo(f"error: {abort}", err=True)
        raise typer.Exit(1) from None
    for rejected in report.rejected_rows[:50]:
        typer.echo(f"rejected: row {rejected.row}: {rejected.field}: {rejected.reason}", err=True)
    if len(report.rejected_rows) > 50:
        typer.echo(f"… and {len(report.rejected_rows) - 50} more rejections", err=True)
    typer.echo(
        f"alerts of {county} imported as {username}: {report.rows} rows, "
        f"{report.matched} matched, {report.unmatched} unmatched, "
        f"{report.duplicate} duplicate, {report.rejected} rejected"
    )


@cli.command("create-user")
def create_user(
    username: Annotated[str, typer.Option(help="Login name")],
    password: Annotated[str, typer.Option(help="Password (at least 8 characters)")],
    role: Annotated[
        str, typer.Option(help="officer | first_secretary | town_staff | county_admin")
    ],
    region: Annotated[
        list[str],
        typer.Option(
            help="Village (officer, first_secretary), town (town_staff) or county "
            "(county_admin); repeatable"
        ),
    ],
    display_name: Annotated[str, typer.Option(help="Name shown in the app")] = "",
) -> None:
    """Create a user, or update an existing one's password, role and regions."""
    from app.users import service
    from app.users.schemas import UserCreate

    try:
        data = UserCreate(
            username=username,
            password=password,
            role=role,
            regions=region,
            display_name=display_name,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    async def work(session: AsyncSession) -> str:
        try:
            _, created = await service.upsert_user(session, data=data)
        except service.UserRegionError as exc:
            raise _Abort(str(exc)) from None
        return "created" if created else "updated"

    try:
        outcome = _run_in_session(work)
    except _Abort as abort:
        typer.echo(f"error: {abort}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"user {username} {outcome} ({role}: {', '.join(region)})")


@cli.command("assign-regions")
def assign_regions(
    username: Annotated[str, typer.Option(help="Login name of the account")],
    region: Annotated[
        list[str],
        typer.Option(
            help="Village (officer, first_secretary), town (town_staff) or county "
            "(county_admin); repeatable: the account's regions become exactly these"
        ),
    ],
) -> None:
    """Reassign an account's villages, town or county; its password and logins stay valid.

    What its phone still sends for a village taken from it is held for the county admin
    (GET /api/v1/sync/held), not lost.
    """
    import app as package
    from app.core.errors import AppError
    from app.core.i18n import load_catalogs, using_language
    from app.users import service
    from app.users.models import Role
    from app.users.schemas import UserRegionsUpdate

    load_catalogs(Path(package.__file__).parent)  # what is wrong with a region, in Chinese
    try:
        data = UserRegionsUpdate(regions=region)
    except ValueError as exc:
        typer.echo(f"错误：区划代码无效：{exc}", err=True)
        raise typer.Exit(2) from None

    async def work(session: AsyncSession) -> tuple[list[str], list[str]]:
        user = await service.find_user(session, username=username)
        if user is None:
            raise _Abort(f"用户 {username} 不存在（先用 create-user 创建）")
        if user.role == Role.api_client.value:
            raise _Abort(f"{username} 是第三方应用账号，没有分配区划")
        typer.echo(f"  正在为 {username}（{user.role}）分配区划……", err=True)
        before = await service.get_regions(session, user.id)
        try:
            record = await service.put_user_regions(
                session, actor=None, user_id=user.id, regions=data.regions
            )
        except AppError as exc:
            with using_language("zh-CN"):
                problems = [e.rendered()["message"] for e in exc.errors or []]
                if not problems and exc.text is not None:
                    problems = [exc.text.render()]
            raise _Abort("；".join(problems) or str(exc)) from None
        return before, record.regions

    try:
        before, after = _run_in_session(work)
    except _Abort as abort:
        typer.echo(f"错误：{abort}", err=True)
        typer.echo("未做任何更改", err=True)
        raise typer.Exit(1) from None
    taken = sorted(set(before) - set(after))
    typer.echo(f"用户 {username} 的区划已更新：{'、'.join(after)}（密码和已登录设备不变）")
    if taken:
        typer.echo(
            f"已移除：{'、'.join(taken)}；手机上尚未上传的这些村的记录将暂存，"
            "由县级管理员接收或退回"
        )


@cli.command("seed-demo")
def seed_demo() -> None:
    """Build the demo county (莘县): towns, villages, ~600 households, users. Safe to run twice."""
    from app.demo import seed

    if get_settings().environment == "production":
        typer.echo("error: seed-demo creates known demo passwords; refused in production", err=True)
        raise typer.Exit(2)
    summary = _run_in_session(
        lambda session: seed.seed_demo(session, echo=lambda m: typer.echo(m, err=True)), load=True
    )
    typer.echo(summary)


@cli.command("prune-changes")
def prune_changes(
    older_than_days: Annotated[
        int | None,
        typer.Option(min=1, help="Default: FIELDSYNC_CHANGE_RETENTION_DAYS (90)"),
    ] = None,
) -> None:
    """Forget delete entries of the sync feed older than the retention (run daily, e.g. cron).

    Phones whose cursor is older get 410 and download afresh.
    """
    from app.core.base import utcnow
    from app.sync.retention import prune_deletes

    days = older_than_days or get_settings().change_retention_days
    pruned = _run_in_session(
        lambda session: prune_deletes(session, older_than_days=days, now=utcnow())
    )
    typer.echo(
        f"pruned {pruned.deleted} delete entries older than {days} days; "
        "cursors from before them now get 410"
    )


@cli.command()
def backup(
    directory: Annotated[Path, typer.Argument(help="New (or empty) directory to write")],
) -> None:
    """Back up the database, the photos and the keys while the server goes on serving.

    One consistent moment of the database (SQLite's online backup, or pg_dump of one snapshot),
    the photo bytes it names and the JWT and ID-number keys, with a manifest of their digests.
    The directory holds ID numbers and the keys: keep it as safe as the server.
    """
    from app.backup.service import create_backup

    manifest = _run_backup_step(create_backup, directory, analyze=False)
    typer.echo(
        f"backup in {directory}: {sum(manifest.tables.values())} rows, {manifest.photos} "
        f"photos ({len(manifest.objects)} objects), revision {manifest.alembic_revision}"
    )


@cli.command()
def restore(
    directory: Annotated[Path, typer.Argument(help="A directory `fieldsync backup` wrote")],
) -> None:
    """Restore a backup into the configured empty database, photo store and data directory.

    The backup is checked against its manifest before anything is written; a non-empty database
    is refused (PostgreSQL: create a new database and point FIELDSYNC_DATABASE_URL at it).
    """
    from app.backup.service import restore_backup

    manifest = _run_backup_step(restore_backup, directory, analyze=True)
    typer.echo(
        f"restored {directory} (taken {manifest.created_at.isoformat(timespec='seconds')}): "
        f"{sum(manifest.tables.values())} rows, {manifest.photos} photos"
    )


def _run_backup_step(step: Callable[..., Awaitable[T]], directory: Path, *, analyze: bool) -> T:
    from app.backup.manifest import BackupError
    from app.photos.storage import make_storage

    async def _main() -> T:
        settings = get_settings()
        engine = make_engine(settings)
        storage = make_storage(settings)
        try:
            result = await step(
                settings, engine, storage, directory, progress=lambda m: typer.echo(m, err=True)
            )
            if analyze:  # a restored database has no planner statistics yet
                await _gather_statistics(engine)
            return result
        finally:
            await storage.close()
            await engine.dispose()

    try:
        return asyncio.run(_main())
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@cli.command("prune-uploads")
def prune_uploads() -> None:
    """Delete expired uploads and finish any whose last byte arrived before a crash.

    Every API process also does this every FIELDSYNC_UPLOAD_CLEANUP_INTERVAL_SECONDS.
    """
    from types import SimpleNamespace

    from app.core.db import transaction
    from app.photos.storage import make_storage
    from app.photos.uploads import expire_uploads

    async def _main() -> tuple[int, int]:
        settings = get_settings()
        engine = make_engine(settings)
        storage = make_storage(settings)
        state = SimpleNamespace(sessionmaker=make_sessionmaker(engine))
        try:
            return await expire_uploads(partial(transaction, state), storage, settings)
        finally:
            await storage.close()
            await engine.dispose()

    deleted, finished = asyncio.run(_main())
    typer.echo(f"deleted {deleted} expired uploads; finished {finished} stranded ones")


@cli.command("deliver-webhooks")
def deliver_webhooks(
    once: Annotated[
        bool, typer.Option("--once", help="Send what is due now, then exit (e.g. from cron)")
    ] = False,
) -> None:
    """Deliver webhook events until stopped (Ctrl-C).

    Every API process does this too unless FIELDSYNC_WEBHOOK_WORKER_ENABLED=false; several
    workers at once share the work safely.
    """
    from types import SimpleNamespace

    from app.core.db import transaction
    from app.webhooks.delivery import Worker

    async def _main() -> int:
        settings = get_settings()
        engine = make_engine(settings)
        state = SimpleNamespace(sessionmaker=make_sessionmaker(engine))
        worker = Worker(partial(transaction, state), settings)
        try:
            if not once:
                await worker.run()
            total = 0
            while sent := await worker.run_once():
                total += sent
            return total
        finally:
            await engine.dispose()

    configure_logging(get_settings().log_level)
    try:
        sent = asyncio.run(_main())
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    typer.echo(f"sent {sent} webhook deliveries")


@cli.command("prune-webhooks")
def prune_webhooks(
    older_than_days: Annotated[
        int | None,
        typer.Option(min=1, help="Default: FIELDSYNC_WEBHOOK_RETENTION_DAYS (30)"),
    ] = None,
) -> None:
    """Delete delivered and dead webhook deliveries older than the retention, and their events.

    Deliveries still pending or being retried are kept, whatever their age.
    """
    from datetime import timedelta
    from types import SimpleNamespace

    from app.core.base import utcnow
    from app.core.db import transaction
    from app.webhooks.outbox import prune

    days = older_than_days or get_settings().webhook_retention_days

    async def _main() -> tuple[int, int]:
        engine = make_engine(get_settings())
        state = SimpleNamespace(sessionmaker=make_sessionmaker(engine))
        try:
            return await prune(
                partial(transaction, state), older_than=utcnow() - timedelta(days=days)
            )
        finally:
            await engine.dispose()

    deliveries, events = asyncio.run(_main())
    typer.echo(
        f"deleted {deliveries} webhook deliveries and {events} events older than {days} days"
    )


@cli.command()
def simulate(
    phones: Annotated[int, typer.Option(min=1, help="Phones working at once")] = 10,
    records_per_phone: Annotated[
        int, typer.Option(min=0, help="Records each phone makes offline (2 visits : 1 snapshot)")
    ] = Plan.records,
    batch_size: Annotated[
        int, typer.Option(min=1, max=500, help="Records per sync batch, at the most")
    ] = Plan.batch_size,
    photos_per_phone: Annotated[
        int, typer.Option(min=0, help="Visits with a sign-in photo, per phone (one each)")
    ] = Plan.photos,
    conflict_share: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Share of synced records the officer also edits on another device (conflicts "
            "and stale revisions to resolve)",
        ),
    ] = Plan.conflict_share,
    loss: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Slow links: probability a request is lost (half before the "
            "server gets it, half after it answered)",
        ),
    ] = SLOW_LINK.loss,
    latency_ms: Annotated[
        float, typer.Option(min=0, help="Slow links: round-trip time")
    ] = SLOW_LINK.latency_ms,
    bandwidth_kbps: Annotated[
        float, typer.Option(min=0, help="Slow links: kbit/s each way (0: unlimited)")
    ] = SLOW_LINK.bandwidth_kbps,
    fast_share: Annotated[
        float, typer.Option(min=0, max=1, help="Share of phones on a perfect link")
    ] = Config.fast_share,
    ramp_seconds: Annotated[
        float, typer.Option(min=0, help="Phones come into signal spread over this long")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Same seed, same phones, records and losses")] = 1,
    base_url: Annotated[str, typer.Option(help="The server")] = Config.base_url,
    username: Annotated[
        list[str] | None, typer.Option(help="An officer to log in as; repeatable")
    ] = None,
    users: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="File of officers, one a line: username, or username,password",
        ),
    ] = None,
    username_prefix: Annotated[
        str | None, typer.Option(help="Officers PREFIX1 … PREFIXn, one per phone")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(help="Password of the officers without their own; default: the demo's"),
    ] = None,
) -> None:
    """Phones at the end of the day, syncing what they recorded offline over slow, lossy links.

    Each phone logs in, downloads its villages, records visits and income snapshots, syncs them
    in batches (retrying lost requests with the same batch), then reads back what the server
    holds. Phones take the officers in turn. Exit 1 if a record was lost, duplicated or skipped
    by the change feed, or a phone gave up.
    """
    from app.demo.seed import DEMO_PASSWORD
    from app.simulator import LinkProfile, simulate, usernames

    password = password or DEMO_PASSWORD
    if username:
        accounts = [(name, password) for name in username]
    elif users is not None:
        accounts = _accounts(users, password)
    elif username_prefix:
        accounts = [(name, password) for name in usernames(username_prefix, phones)]
    else:
        typer.echo("error: name the officers: --username, --users or --username-prefix", err=True)
        raise typer.Exit(2)
    if not accounts:
        typer.echo(f"error: {users} names no officer", err=True)
        raise typer.Exit(2)
    config = Config(
        phones=phones,
        users=accounts,
        plan=Plan(
            today=date.today(),
            records=records_per_phone,
            batch_size=batch_size,
            photos=photos_per_phone,
            conflict_share=conflict_share,
        ),
        base_url=base_url.rstrip("/"),
        slow_link=LinkProfile(latency_ms=latency_ms, bandwidth_kbps=bandwidth_kbps, loss=loss),
        fast_share=fast_share,
        seed=seed,
        ramp_seconds=ramp_seconds,
    )
    summary = asyncio.run(simulate(config, progress=lambda line: typer.echo(line, err=True)))
    for line in summary.lines():
        typer.echo(line)
    if not summary.ok:
        raise typer.Exit(1)


def _accounts(path: Path, password: str) -> list[tuple[str, str]]:
    """(username, password) of each line of `path`; blank lines and # comments skipped."""
    accounts = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, own = line.partition(",")
            accounts.append((name.strip(), own.strip() or password))
    return accounts


@cli.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option(help="Write to this file instead of stdout")
    ] = None,
) -> None:
    """Print (or write) the OpenAPI document the app serves."""
    from app.openapi import openapi_json

    text = openapi_json()
    if output is None:
        sys.stdout.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output} ({len(json.loads(text)['paths'])} paths)")


audit_cli = typer.Typer(help="the audit log", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


@audit_cli.command("verify")
def verify_audit() -> None:
    """Check the audit log's hash chain: exit 1 naming the first edited, deleted or inserted
    entry."""
    from app.audit import chain

    def progress(done: int) -> None:
        typer.echo(f"  已核对 {done} 条", err=True)

    report = _run_in_session(partial(chain.verify, progress=progress))
    if report.broken is not None:
        broken = report.broken
        entry = f"（id {broken.entry_id}）" if broken.entry_id else ""
        typer.echo(
            f"审计日志已被篡改：第一个异常条目是序号 {broken.seq}{entry}，"
            f"{_TAMPERING[broken.tampering]}：{broken.reason}",
            err=True,
        )
        typer.echo(f"此前 {report.count} 条完好", err=True)
        raise typer.Exit(1)
    typer.echo(f"审计日志完整：{report.count} 条")
    if report.count:
        # The chain cannot show its newest entries deleted: compare with a tail noted earlier.
        typer.echo(f"最后一条：序号 {report.last_seq}，哈希 {report.last_hash}")


_TAMPERING = {"edited": "被修改", "deleted": "被删除", "inserted": "被插入"}


def main() -> None:
    cli()
