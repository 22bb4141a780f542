"""The ``postroom`` command: serve, worker, migrate, replay, parse, token, user, inbox."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from postroom.errors import PostroomError
from postroom.settings import Settings

if TYPE_CHECKING:
    import uvicorn

    from postroom.service import Service

app = typer.Typer(help="Postroom: an email channel for support teams.", no_args_is_help=True, add_completion=False)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
inbox_app = typer.Typer(
    help="Connections (inboxes): create, update, show, delete, list, start, stop, test, logs.", no_args_is_help=True
)
user_app = typer.Typer(help="Users: the people who sign in (admins and agents).", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")
app.add_typer(inbox_app, name="inbox")


def _service(*, migrate: bool = True) -> Service:
    from postroom.logconfig import configure
    from postroom.service import Service

    try:
        settings = Settings()
    except (PostroomError, ValidationError) as error:
        # A wrong POSTROOM_* variable: say which and why, without a traceback.
        typer.echo(f"error: invalid setting: {error}", err=True)
        raise typer.Exit(2) from None
    configure(settings.log_level)
    service = Service(settings)
    if migrate:
        service.migrate()
    return service


def _fail(error: Exception | str) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(1)


class _ShutdownSignals:
    """SIGTERM and SIGINT ask ``serve`` and ``worker`` to shut down cleanly; a second one while closing ends at once.

    uvicorn catches both signals while it serves, shuts the HTTP server down, puts the handlers it found
    back (these) and raises the signal again, which would otherwise end the process before
    ``Service.close()``. Here that raise only records the request (uvicorn has already stopped), so the
    service closes: connections log "stopped", leases are released, sends in flight settle, exit 0.
    """

    def __init__(self, on_request: Callable[[], None] = lambda: None) -> None:
        self.requested = threading.Event()
        self.on_request = on_request
        self._closing = False
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def closing(self) -> None:
        """From now on a signal is the admin's second one: stop waiting for the shutdown."""
        self._closing = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._closing:
            # Nothing more to wait for: sends still in flight become "uncertain" when their claim runs out.
            sys.stderr.write(f"{signal.Signals(signum).name} again: exiting without waiting for the shutdown\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self.requested.set()
        self.on_request()


GRACEFUL_SHUTDOWN_SECONDS = 5


def settle_heap() -> None:
    """Move every object made while starting (modules, the app, the service) out of the collector's sight.

    Python's full collection walks every tracked object; with the app loaded that is some 170,000, and a
    request that builds a few thousand objects (a search's matched ids) triggers one every few requests:
    measured at 100,000 conversations, every eighth search took 200–290 ms instead of 70 (bench_search).
    Objects made at startup live as long as the process, so they need not be scanned again (gc.freeze).
    """
    gc.collect()
    gc.freeze()


def http_config(service: Service, host: str, port: int) -> uvicorn.Config:
    """The HTTP server of ``postroom serve``: the API and the web app of ``service``."""
    import uvicorn

    from postroom.api.app import create_app

    return uvicorn.Config(
        create_app(service),
        host=host,
        port=port,
        log_level="warning",
        # Only these proxies may say who the client is (sign-in throttling counts per client address).
        proxy_headers=True,
        forwarded_allow_ips=service.settings.trusted_proxies,
        # Open pages hold event streams that never end by themselves: a shutdown closes them after this.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


@app.command()
def serve(
    no_workers: Annotated[
        bool,
        typer.Option("--no-workers", help="Serve the API only; `postroom worker` processes do the work."),
    ] = False,
) -> None:
    """Start the API (and, unless --no-workers, read mailboxes, process mail and send replies)."""
    import uvicorn

    from postroom.api.tokens import create_token, has_tokens

    service = _service()
    # From here on a SIGTERM or SIGINT closes the service (workers may start below).
    shutdown = _ShutdownSignals()
    with service.db.write() as session:
        if not has_tokens(session):
            token = create_token(session, "admin (first start)")
            typer.echo(f"First start: an admin API token was created. Keep it, it is shown only once:\n\n  {token}\n")
            typer.echo(
                "To sign in with a password instead, make a user (it asks for the password):\n\n"
                "  postroom user create you@example.com --name 'Your Name' --role admin\n"
            )
    host, port = service.settings.http_host_port
    # The listener first: a listener that cannot start (address taken, unusable TLS files) stops serve
    # before any worker has signed in to a mailbox.
    try:
        listener = service.start_listener()
    except OSError as error:
        service.close()
        typer.echo(f"error: POSTROOM_SMTP_BIND {service.settings.smtp_bind}: cannot listen: {error}", err=True)
        raise typer.Exit(2) from None
    except PostroomError as error:
        service.close()
        typer.echo(f"error: invalid setting: {error}", err=True)
        raise typer.Exit(2) from None
    if not no_workers:
        service.start_workers()
    if listener is not None:
        typer.echo(f"SMTP listener for forwarding on {listener.host}:{listener.port}")
    typer.echo(f"Postroom listening on http://{host}:{port} (sign in at /login, API docs at /docs)")
    server = uvicorn.Server(http_config(service, host, port))

    def stop_serving() -> None:
        # A signal outside uvicorn's own handlers (before it took them over): it starts, sees this and stops.
        server.should_exit = True

    shutdown.on_request = stop_serving
    if shutdown.requested.is_set():
        stop_serving()
    settle_heap()
    try:
        server.run()
    finally:
        shutdown.closing()
        service.close()
    if not server.started and not shutdown.requested.is_set():
        # uvicorn logged why (most often: the address is taken).
        typer.echo(f"error: POSTROOM_HTTP_BIND {host}:{port}: the HTTP server could not start", err=True)
        raise typer.Exit(3)
    typer.echo("Postroom stopped")


@app.command()
def worker() -> None:
    """Read mailboxes, process mail and send replies, without the API (for scale-out)."""
    service = _service()
    shutdown = _ShutdownSignals()
    service.start_workers()
    typer.echo(f"Postroom worker {service.worker_id} running")
    shutdown.requested.wait()
    shutdown.closing()
    service.close()
    typer.echo(f"Postroom worker {service.worker_id} stopped")


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from postroom.store.migrate import current_revision

    service = _service()
    typer.echo(f"database at revision {current_revision(service.db)}")
    service.close()


@app.command()
def replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Raw message ids; all quarantined ones when omitted.")] = None,
) -> None:
    """Run quarantined mail through the pipeline again, now, and print each outcome."""
    from sqlalchemy import select

    from postroom.store.models import RawMessage, RawStatus

    service = _service()
    with service.db.read() as session:
        query = select(RawMessage.id, RawMessage.status)
        if ids:
            query = query.where(RawMessage.id.in_(ids))
        else:
            query = query.where(RawMessage.status == RawStatus.QUARANTINED)
        found = {raw_id: status for raw_id, status in session.execute(query.order_by(RawMessage.id))}
    # Named ids that cannot be replayed are said so, each with why: silence would look like success.
    skipped = 0
    for raw_id in ids or []:
        status = found.get(raw_id)
        if status is None:
            typer.echo(f"{raw_id}	no such raw message", err=True)
            skipped += 1
        elif status is not RawStatus.QUARANTINED:
            typer.echo(f"{raw_id}	not quarantined (it is {status.value}); nothing to replay", err=True)
            skipped += 1
    targets = [raw_id for raw_id, status in found.items() if status is RawStatus.QUARANTINED]
    if not targets:
        if not ids:
            typer.echo("nothing quarantined to replay")
        service.close()
        if skipped:
            raise typer.Exit(1)
        return
    service.pipeline.replay(targets)
    # A running worker may take some of them first; those it finishes, these we do here and now.
    mine = service.pipeline.claim_ids(targets)
    for raw_id in sorted(set(targets) - set(mine)):
        typer.echo(f"{raw_id}\ttaken by a running worker")
    failed = 0
    for raw_id in mine:
        outcome = service.pipeline.process(raw_id)
        with service.db.read() as session:
            raw = session.get(RawMessage, raw_id)
            reason = raw.error if raw else ""
        failed += outcome == RawStatus.QUARANTINED
        typer.echo(f"{raw_id}\t{outcome.value}" + (f"\t{reason}" if reason else ""))
    service.close()
    if failed or skipped:
        raise typer.Exit(1)


@app.command()
def parse(
    files: Annotated[list[Path], typer.Argument(help="Mail files (.eml); '-' reads standard input.")],
    body: Annotated[
        bool, typer.Option("--body", help="Each file is a plain-text message body, not a whole mail.")
    ] = False,
) -> None:
    """Print what Postroom understands of each mail, one JSON object per line (the pipeline's own code)."""
    from postroom.mail.parse import parse_message
    from postroom.mail.quotes import split_reply

    status = 0
    for path in files:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
        try:
            if body:
                text = data.decode("utf-8", "replace")
                parts = split_reply(text)
                out: dict[str, object] = {
                    "file": str(path),
                    "text": text,
                    "reply_text": parts.reply_text,
                    "signature": parts.signature,
                    "quoted_text": parts.quoted_text,
                }
            else:
                out = {"file": str(path), **parse_message(data).to_json()}
        except PostroomError as error:
            out = {"file": str(path), "error": str(error)}
            status = 1
        typer.echo(json.dumps(out, ensure_ascii=False))
    raise typer.Exit(status)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="What the token is for.")] = "admin",
    user: Annotated[
        str | None,
        typer.Option(
            "--user", metavar="EMAIL", help="Whose token it is (their role applies); default: the first admin."
        ),
    ] = None,
) -> None:
    """Create an API token and print it (it is shown only once)."""
    from sqlalchemy import select

    from postroom.api.tokens import create_token
    from postroom.helpdesk.users import UserService
    from postroom.store.models import Role, User

    service = _service()
    try:
        with service.db.write() as session:
            if user is not None:
                owner = UserService().by_email(session, user)
                if not owner.enabled:
                    raise PostroomError(f"{owner.email} is disabled: enable the user first")
                user_id: int | None = owner.id
            else:
                first_admin = select(User.id).where(User.role == Role.ADMIN, User.enabled.is_(True))
                user_id = session.scalar(first_admin.order_by(User.id).limit(1))
            token = create_token(session, name, user_id=user_id)
    except PostroomError as error:
        service.close()
        _fail(error)
    typer.echo(token)
    service.close()


def _read_password(password_file: Path | None) -> str:
    import getpass

    if password_file is not None:
        try:
            # The first line: a file written by `echo` ends with a newline that is not part of the password.
            return password_file.read_text(encoding="utf-8").splitlines()[0] if password_file.stat().st_size else ""
        except (OSError, UnicodeDecodeError) as error:
            raise typer.BadParameter(f"cannot read {password_file}: {error}") from None
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        _fail("the two passwords differ; nothing was changed")
    return first


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The address the user signs in with.")],
    name: Annotated[str, typer.Option(help="The name shown to colleagues.")] = "",
    role: Annotated[str, typer.Option(help="admin or agent.")] = "agent",
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="Read the password from the first line of this file, not a prompt."),
    ] = None,
) -> None:
    """Create a user who signs in with a password (asked twice unless --password-file is given)."""
    from sqlalchemy import select

    from postroom.helpdesk.users import UserService, check_password, normalize_email
    from postroom.store.models import Role, User

    if role not in {r.value for r in Role}:
        raise typer.BadParameter(f"expected admin or agent, got {role!r}", param_hint="--role")
    service = _service()
    try:
        # Refuse a taken address before asking for a password that would be thrown away.
        with service.db.read() as session:
            address = normalize_email(email)
            if session.scalar(select(User.id).where(User.email == address)) is not None:
                raise PostroomError(f"a user with the address {address} exists already")
        password = _read_password(password_file)
        check_password(password)
        with service.db.write() as session:
            made = UserService().create(session, address, name=name, role=Role(role), password=password)
            line = f"{made.id}\t{made.email}\t{made.role.value}"
    except PostroomError as error:
        service.close()
        _fail(error)
    typer.echo(f"created {line}")
    service.close()


@user_app.command("list")
def user_list() -> None:
    """List the users: id, address, role, enabled or disabled, name."""
    from postroom.helpdesk.users import UserService

    service = _service()
    with service.db.read() as session:
        for user in UserService().list(session):
            state = "enabled" if user.enabled else "disabled"
            typer.echo(f"{user.id}\t{user.email}\t{user.role.value}\t{state}\t{user.name}")
    service.close()


@user_app.command("disable")
def user_disable(email: Annotated[str, typer.Argument(help="The user's address.")]) -> None:
    """Disable a user: their unresolved conversations go back to the queue and their tokens stop working."""
    from postroom.helpdesk.users import UserService

    users = UserService()
    service = _service()
    try:
        with service.db.write() as session:
            report = users.disable(session, users.by_email(session, email).id)
            summary = (
                f"{report.user.email} disabled: {len(report.unassigned)} conversation(s) back to the queue, "
                f"{report.revoked_tokens} token(s) revoked"
            )
    except PostroomError as error:
        service.close()
        _fail(error)
    typer.echo(summary)
    service.close()


@inbox_app.command("list")
def inbox_list() -> None:
    """List connections with their status."""
    service = _service()
    with service.db.read() as session:
        for c in service.connections.list_all(session):
            addresses = ", ".join(b.address for b in c.mailboxes)
            message = f"\t{c.status_message}" if c.status_message else ""
            typer.echo(f"{c.id}\t{c.name}\t{c.status.value}\t{addresses}{message}")
    service.close()


def _set_enabled(name: str, enabled: bool) -> None:
    service = _service()
    try:
        with service.db.write() as session:
            connection = service.connections.get_by_name(session, name)
            if enabled:
                service.connections.start(session, connection)
            else:
                service.connections.stop(session, connection)
    except PostroomError as error:
        _fail(error)
    finally:
        service.close()
    typer.echo(f"{name}: {'start' if enabled else 'stop'} requested; a running `postroom serve` or worker acts on it")


@inbox_app.command("start")
def inbox_start(name: str) -> None:
    """Ask the workers to start a connection."""
    _set_enabled(name, True)


@inbox_app.command("stop")
def inbox_stop(name: str) -> None:
    """Ask the workers to stop a connection."""
    _set_enabled(name, False)


@inbox_app.command("test")
def inbox_test(
    name: str,
    roundtrip: Annotated[
        bool, typer.Option("--roundtrip", help="Also send a probe mail to each mailbox, wait for it, delete it.")
    ] = False,
    send_to: Annotated[
        str | None,
        typer.Option("--send-to", metavar="ADDRESS", help="Also send a test mail from each mailbox to ADDRESS."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=300, help="Seconds each network step, and the roundtrip's wait, may take.")
    ] = 20.0,  # the probe's DEFAULT_TIMEOUT; not imported here, to keep the command's start quick
) -> None:
    """Test a connection step by step (DNS, TCP, TLS, sign-in, folder); exit 1 when a step fails."""
    from postroom.channels.probe import probe_connection

    service = _service()
    try:
        with service.db.read() as session:
            connection_id = service.connections.get_by_name(session, name).id
        report = probe_connection(
            service.db, service.secrets, connection_id, roundtrip=roundtrip, send_to=send_to, timeout=timeout
        )
    except PostroomError as error:
        _fail(error)
        return
    finally:
        service.close()
    passed, failed, skipped = _marks()
    for step in report.steps:
        mark = skipped if step.skipped else passed if step.ok else failed
        timing = "" if step.skipped else f"{step.milliseconds:.0f} ms"
        label = f"{step.part} {step.protocol}".strip()
        typer.echo(f"{mark} {step.mailbox}  {label:<14} {step.name:<8} {timing:>8}  {step.detail}")
    typer.echo(("OK: " if report.ok else "FAILED: ") + report.summary)
    if not report.ok:
        raise typer.Exit(1)


def _marks() -> tuple[str, str, str]:
    """✓ ✗ – where the terminal can show them, else words (a pipe or a C locale may be ASCII-only)."""
    fancy = ("✓", "✗", "–")
    try:
        "".join(fancy).encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return ("OK  ", "FAIL", "-   ")
    return fancy


# ── creating and changing connections ───────────────────────────────────────────────────────────


def _read_settings_file(path: Path) -> dict[str, object]:
    """A connection's settings from a file: a JSON object (the API's body), or ``KEY=VALUE`` lines.

    The ``KEY=VALUE`` form holds environment variables, written as in an ``.env`` file: ``#`` starts a
    comment line, ``export`` is allowed, and keys are either our field names or the environment-variable
    names (EMAIL_NAME, IMAP_MAILBOX, CHECK_INTERVAL …). A value in double quotes may span lines and knows
    the escapes ``\\n``, ``\\t``, ``\\"`` and ``\\\\`` (a multi-line SMTP_SIGNATURE); single quotes
    take the text as it is. The file is UTF-8, with or without a byte-order mark.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise typer.BadParameter(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise typer.BadParameter(f"{path} is not UTF-8 text (byte {error.start}): save it as UTF-8") from None
    if text.lstrip().startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as error:
            raise typer.BadParameter(f"{path} is not valid JSON: {error}") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter(f"{path} must hold a JSON object")
        return loaded
    return _parse_env(text, str(path))


_ENV_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _parse_env(text: str, where: str) -> dict[str, object]:
    pairs: dict[str, object] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].lstrip()
        index += 1
        if not line.strip() or line.startswith("#"):
            continue
        key, eq, value = line.removeprefix("export ").partition("=")
        # Trailing blanks inside double quotes are the value's ("-- " opens a signature, RFC 3676 §4.3).
        key, value = key.strip(), value.lstrip()
        if not value.startswith('"'):
            value = value.rstrip()
        if not eq or not key:
            raise typer.BadParameter(f"{where}:{number}: expected KEY=VALUE")
        if value.startswith('"'):
            # Read on, line by line, up to the closing quote that no backslash escapes.
            body = value[1:]
            while not _closes(body):
                if index >= len(lines):
                    raise typer.BadParameter(f"{where}:{number}: the quoted value of {key} is never closed")
                body += "\n" + lines[index]
                index += 1
            value = _unescape(body[: _closing_quote(body)])
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        pairs[key] = value
    return pairs


def _closing_quote(body: str) -> int:
    """Where the unescaped closing double quote is, or -1."""
    escaped = False
    for position, char in enumerate(body):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return position
    return -1


def _closes(body: str) -> bool:
    return _closing_quote(body) >= 0


def _unescape(body: str) -> str:
    out: list[str] = []
    escaped = False
    for char in body:
        if escaped:
            out.append(_ENV_ESCAPES.get(char, "\\" + char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)


def _connection_body(settings_file: Path | None, assignments: list[str], removed: list[str]) -> dict[str, object]:
    """The API body for ``inbox create``/``update``: the file, then KEY=VALUE arguments, then ``--remove``.

    A value ``@PATH`` is read from that file (one trailing newline dropped), so that a password need not
    appear in the shell history or the process list.
    """
    from postroom.helpdesk.connections import ENV_ALIASES, SECRET_FIELDS

    given: dict[str, object] = _read_settings_file(settings_file) if settings_file is not None else {}
    for assignment in assignments:
        key, eq, value = assignment.partition("=")
        if not eq or not key.strip():
            raise typer.BadParameter(f"{assignment!r}: expected KEY=VALUE")
        if value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8").removesuffix("\n")
            except OSError as error:
                raise typer.BadParameter(f"{key}: cannot read {value[1:]}: {error.strerror or error}") from None
        given[key.strip()] = value
    body: dict[str, object] = {}
    env: dict[str, object] = {}
    for field, setting in given.items():
        if field == "env" and isinstance(setting, dict):
            env.update(setting)
        elif field.upper() in ENV_ALIASES and field.isupper():
            env[field] = setting
        else:
            body[field.lower()] = setting
    for key in removed:
        field = key.strip().lower()
        # A secret is removed by an explicit null ("" keeps it, as a form sends it back); any other
        # setting by "", which stands for "none" or its default.
        body[field] = None if field in (*SECRET_FIELDS, "sendgrid_api_key", "webhook_signing_key") else ""
    if env:
        body["env"] = env
    return body


def _echo_connection(service: Service, connection_id: int, *, warn: bool = False) -> None:
    with service.db.read() as session:
        connection = service.connections.get(session, connection_id)
        view = service.connections.view(connection)
    typer.echo(json.dumps(view, indent=2, ensure_ascii=False))
    if warn:
        # On stderr, so that the JSON on stdout stays parseable; said at every save while it holds.
        for warning in view["warnings"]:
            typer.echo(f"warning: {warning}", err=True)


def _input_error(error: ValidationError) -> str:
    """Pydantic's complaint about a connection body, one line per field, in the API's words."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())


_SETTINGS_HELP = (
    "KEY=VALUE settings, as in the API body or the environment-variable names (EMAIL_NAME=…); VALUE @FILE reads a file."
)
_FILE_OPTION = typer.Option("--from", "-f", help="A JSON object (the API body) or KEY=VALUE lines.")


@inbox_app.command("create")
def inbox_create(
    name: str,
    settings: Annotated[list[str] | None, typer.Argument(help=_SETTINGS_HELP, show_default=False)] = None,
    settings_file: Annotated[Path | None, _FILE_OPTION] = None,
) -> None:
    """Create a connection: e.g. `postroom inbox create Support address=support@example.com password=@pw.txt …`.

    A password or token goes unencrypted to a host other than loopback only with allow_plaintext_auth=true.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from postroom.helpdesk.connections import ConnectionInput

    body = {**_connection_body(settings_file, settings or [], []), "name": name}
    service = _service()
    try:
        spec = ConnectionInput.model_validate(body)
        with service.db.write() as session:
            connection_id = service.connections.create(session, spec).id
        _echo_connection(service, connection_id, warn=True)
    except ValidationError as error:
        _fail(_input_error(error))
    except PostroomError as error:
        _fail(error)
    except SQLAlchemyError as error:
        # The service checks what it can first; should the database still refuse, say so without a traceback.
        _fail(f"the database refused the change: {getattr(error, 'orig', None) or error}")
    finally:
        service.close()


@inbox_app.command("update")
def inbox_update(
    name: str,
    settings: Annotated[list[str] | None, typer.Argument(help=_SETTINGS_HELP, show_default=False)] = None,
    settings_file: Annotated[Path | None, _FILE_OPTION] = None,
    remove: Annotated[
        list[str] | None,
        typer.Option(
            "--remove",
            metavar="FIELD",
            help="Remove a stored secret (e.g. smtp_password) or clear a setting (reply_to).",
        ),
    ] = None,
) -> None:
    """Change some settings of a connection (the others stay); a running connection restarts with them.

    A change of where a stored secret goes (server, port, encryption, user name, API or token URL) needs that
    secret again in the same update: the stored one is never sent to a new server.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from postroom.helpdesk.connections import ConnectionInput

    body = _connection_body(settings_file, settings or [], remove or [])
    if not body:
        _fail(ValueError("nothing to change: give KEY=VALUE settings, --from FILE or --remove FIELD"))
    service = _service()
    try:
        spec = ConnectionInput.model_validate(body)
        with service.db.write() as session:
            connection_id = service.connections.get_by_name(session, name).id
            service.connections.update(session, connection_id, spec)
        _echo_connection(service, connection_id, warn=True)
    except ValidationError as error:
        _fail(_input_error(error))
    except PostroomError as error:
        _fail(error)
    except SQLAlchemyError as error:
        # The service checks what it can first; should the database still refuse, say so without a traceback.
        _fail(f"the database refused the change: {getattr(error, 'orig', None) or error}")
    finally:
        service.close()


@inbox_app.command("show")
def inbox_show(name: str) -> None:
    """Print a connection's settings and status as JSON (secrets masked), as the API shows them."""
    service = _service()
    try:
        with service.db.read() as session:
            connection_id = service.connections.get_by_name(session, name).id
        _echo_connection(service, connection_id)
    except PostroomError as error:
        _fail(error)
    finally:
        service.close()


@inbox_app.command("delete")
def inbox_delete(
    name: str,
    confirm: Annotated[str, typer.Option("--confirm", help="The connection's name again: deletion is permanent.")],
) -> None:
    """Delete a connection permanently; its conversations stay readable."""
    service = _service()
    try:
        with service.db.write() as session:
            connection = service.connections.get_by_name(session, name)
            service.connections.delete(session, connection.id, confirm_name=confirm)
    except PostroomError as error:
        _fail(error)
    finally:
        service.close()
    typer.echo(f"{name}: deleted")


@inbox_app.command("logs")
def inbox_logs(name: str, limit: Annotated[int, typer.Option(help="How many of the latest entries.")] = 100) -> None:
    """Print a connection's log (connect, sign-in, imports, sends, errors)."""
    service = _service()
    try:
        with service.db.read() as session:
            connection = service.connections.get_by_name(session, name)
            for row in service.connections.logs(session, connection.id, limit=limit):
                typer.echo(f"{row.at:%Y-%m-%d %H:%M:%S}\t{row.level}\t{row.event}\t{row.message}")
    except PostroomError as error:
        _fail(error)
    finally:
        service.close()


def main() -> None:
    app()
