"""A private Dovecot for tests: real IMAP and POP3 on loopback, started in a few tens of milliseconds.

:class:`DovecotServer` renders a configuration template (the tests keep theirs in
``tests/dovecot/dovecot.conf.in``) into its own temporary directory and runs ``dovecot -F -c`` on it:
its own ``base_dir``, no system configuration, a log file, high free ports on 127.0.0.1 for IMAP
(plain and STARTTLS), IMAPS, POP3 (plain and STARTTLS) and POP3S. The same ports on 127.0.0.2 present
a certificate no one trusts, so that a client can prove it rejects it.

Every user has a passwd-file of its own, which Dovecot opens on first use, so
:meth:`DovecotServer.add_user` takes effect at once (a changed passwd-file is re-read at most once
a second); give every test its own user and tests can share one server. Mail is Maildir under the
temporary directory. IDLE is woken by inotify.

With ``oauth2_introspection_url`` the server also accepts OAuth 2.0 bearer tokens (SASL XOAUTH2 and
OAUTHBEARER, RFC 7628) for IMAP and POP3: Dovecot's oauth2 passdb asks that URL about every token
(RFC 7662 introspection, ``introspection_mode = post``), which
:class:`~postroom.testing.oauth.OAuthTestServer` answers. The token's ``username`` must be the login
of a user added with :meth:`DovecotServer.add_user`, whose passwd-file stays its userdb; password
sign-in keeps working beside it.

Dovecot refuses to deliver mail as uid 0. Run as root, the mail belongs to Dovecot's own unprivileged
``dovecot`` user (which exists wherever Dovecot is installed) and the login processes run as
``dovenull``; run as a normal user, everything runs as that user.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from postroom.sources.base import ImapAccount, ImapEncryption
from postroom.sources.pop3 import Pop3Account, Pop3Encryption
from postroom.testing.certs import Certificates

__all__ = ["DovecotError", "DovecotPorts", "DovecotServer", "MailUser", "find_dovecot"]

TRUSTED_ADDRESS = "127.0.0.1"
UNTRUSTED_ADDRESS = "127.0.0.2"
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) ([\d:,]+)\]")
_BIND_FAILED = ("Address already in use", "bind(")
_START_ATTEMPTS = 5
_STOP_GRACE = 0.2


class DovecotError(RuntimeError):
    """The test Dovecot could not be started, stopped or driven."""


@dataclass(frozen=True, slots=True)
class DovecotPorts:
    imap: int  # plain text, STARTTLS offered (RFC 3501 §6.2.1)
    imaps: int  # implicit TLS (RFC 8314)
    pop3: int  # plain text, STLS offered (RFC 2595)
    pop3s: int  # implicit TLS


@dataclass(frozen=True, slots=True)
class MailUser:
    """One mailbox on the test server. ``name`` is an email address and the login."""

    name: str
    password: str = field(repr=False)

    @property
    def address(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class _Identity:
    login_user: str
    internal_user: str
    internal_group: str
    mail_uid: int
    mail_gid: int


def find_dovecot() -> Path | None:
    """The Dovecot binary, or None when Dovecot is not installed."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin:/sbin")
    return Path(found) if found else None


def dovecot_version(binary: Path) -> str:
    # The binary is the installed Dovecot found on PATH; no argument comes from outside.
    result = subprocess.run(  # noqa: S603
        [binary, "--version"], capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()


class DovecotServer:
    """One private Dovecot instance. Use as a context manager or call :meth:`start` and :meth:`close`."""

    host = TRUSTED_ADDRESS
    untrusted_host = UNTRUSTED_ADDRESS

    def __init__(
        self,
        template: Path,
        certs: Certificates,
        *,
        binary: Path | None = None,
        parent_dir: Path | None = None,
        start_timeout: float = 10.0,
        oauth2_introspection_url: str | None = None,
    ) -> None:
        found = binary or find_dovecot()
        if found is None:
            raise DovecotError("Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)")
        self.binary = found
        self.doveadm = _sibling_tool(found, "doveadm")
        self.template = template
        self.start_timeout = start_timeout
        # mkdtemp under /tmp rather than pytest's 0700 tmp_path: Dovecot's unprivileged processes
        # must be able to reach the sockets and certificates beneath it.
        self.workdir = Path(tempfile.mkdtemp(prefix="postroom-dovecot-", dir=parent_dir))
        self.workdir.chmod(0o755)
        self.base_dir = self.workdir / "run"
        self.mail_root = self.workdir / "mail"
        self.log_path = self.workdir / "dovecot.log"
        self.config_path = self.workdir / "dovecot.conf"
        self.users_dir = self.workdir / "users"
        self.oauth2_introspection_url = oauth2_introspection_url
        # Included by the template (!include_try); written only when OAuth2 is asked for.
        self.oauth2_conf_path = self.workdir / "oauth2.conf"
        self._identity = _service_identity()
        self._instance = f"postroom-test-{self.workdir.name}"
        self._certs = self._copy_certs(certs)
        self._users: dict[str, MailUser] = {}
        self._users_lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, DovecotServer] | None = None
        self._ports: DovecotPorts | None = None
        self.mail_root.mkdir()
        self.users_dir.mkdir()
        self.users_dir.chmod(0o755)
        if os.geteuid() == 0:
            os.chown(self.mail_root, self._identity.mail_uid, self._identity.mail_gid)

    # ── lifecycle ──────────────────────────────────────────────────────────────────────────────

    @property
    def ports(self) -> DovecotPorts:
        if self._ports is None:
            raise DovecotError("Dovecot has not been started")
        return self._ports

    @property
    def pid(self) -> int | None:
        """The master's process id, which is also the id of the process group of all Dovecot's processes."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> DovecotServer:
        """Start on fresh free ports (or the previous ones after :meth:`stop`); return when IMAP greets."""
        if self.running:
            return self
        last_error = ""
        for _attempt in range(_START_ATTEMPTS):
            # Keep the ports across a restart so that clients reconnect to the same place.
            ports = self._ports or _free_ports()
            self._write_config(ports)
            log_offset = len(self.log_text())
            stdout_offset = len(self._stdout_text())
            self._spawn()
            try:
                self._wait_ready(ports)
            except DovecotError as error:
                self._terminate()
                last_error = str(error)
                # Start-up failures (a port taken) reach stdout before the log process runs.
                log_tail = self.log_text()[log_offset:] + self._stdout_text()[stdout_offset:]
                if not any(marker in log_tail for marker in _BIND_FAILED):
                    raise DovecotError(f"{error}\n--- dovecot log ---\n{log_tail}") from None
                # Another process took a port: fresh ones are chosen on the next attempt, or, on a
                # restart that must keep its ports, the same ones once they are free again.
                time.sleep(0.1)
                continue
            self._ports = ports
            return self
        raise DovecotError(f"Dovecot did not start after {_START_ATTEMPTS} attempts: {last_error}")

    def stop(self) -> None:
        """Stop Dovecot and every process it started; mail, users and ports are kept for :meth:`start`."""
        self._terminate()

    def restart(self) -> None:
        """Stop and start again on the same ports: every client connection is dropped."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and delete the temporary directory."""
        self._terminate()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _stdout_text(self) -> str:
        try:
            return (self.workdir / "dovecot.stdout").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _spawn(self) -> None:
        stdout = open(self.workdir / "dovecot.stdout", "ab")  # noqa: SIM115 - handed to the child
        try:
            # A session of its own makes Dovecot's master and all its children one process group,
            # which stop() can end with a single signal.
            self._process = subprocess.Popen(  # noqa: S603 - our binary, our configuration file
                [str(self.binary), "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            stdout.close()
        self._finalizer = weakref.finalize(self, _kill_group, self._process)

    def _wait_ready(self, ports: DovecotPorts) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            process = self._process
            if process is None or process.poll() is not None:
                raise DovecotError(f"Dovecot exited with status {process.returncode if process else None}")
            try:
                with socket.create_connection((self.host, ports.imap), timeout=1.0) as probe:
                    greeting = probe.recv(512)
            except OSError:
                time.sleep(0.005)
                continue
            if greeting.startswith(b"* OK") and self._instance.encode() in greeting:
                return
            time.sleep(0.005)
        raise DovecotError(f"Dovecot did not answer on port {ports.imap} within {self.start_timeout} s")

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is not None:
            _kill_group(process)

    def _write_config(self, ports: DovecotPorts) -> None:
        identity = self._identity
        values = {
            "instance_name": self._instance,
            "greeting": f"{self._instance} ready.",
            "base_dir": self.base_dir,
            "state_dir": self.workdir / "state",
            "log_path": self.log_path,
            "trusted_address": TRUSTED_ADDRESS,
            "untrusted_address": UNTRUSTED_ADDRESS,
            "cert_file": self._certs.cert_file,
            "key_file": self._certs.key_file,
            "untrusted_cert_file": self._certs.untrusted_cert_file,
            "untrusted_key_file": self._certs.untrusted_key_file,
            "users_dir": self.users_dir,
            "mail_root": self.mail_root,
            "mail_uid": identity.mail_uid,
            "mail_gid": identity.mail_gid,
            "login_user": identity.login_user,
            "internal_user": identity.internal_user,
            "internal_group": identity.internal_group,
            "imap_port": ports.imap,
            "imaps_port": ports.imaps,
            "pop3_port": ports.pop3,
            "pop3s_port": ports.pop3s,
            "oauth2_conf": self.oauth2_conf_path,
        }
        if self.oauth2_introspection_url is not None:
            self._write_oauth2_config(self.oauth2_introspection_url)
        self.config_path.write_text(_render(self.template.read_text(), {k: str(v) for k, v in values.items()}))

    def _write_oauth2_config(self, introspection_url: str) -> None:
        """The oauth2 passdb (Dovecot 2.3, doc.dovecot.org/2.3/configuration_manual/authentication/oauth2).

        The passdb takes only the token mechanisms and the template's passwd-file passdb only PLAIN
        and LOGIN, so no password goes to the introspection URL and no token is taken for a password.
        ``introspection_mode = post`` sends ``token=<access token>`` to the URL (RFC 7662 §2.1); a
        token is good when the answer says ``"active": true`` and its ``username`` is the login the
        client named.
        """
        if any(c.isspace() for c in introspection_url):
            raise DovecotError("the introspection URL must not contain whitespace")
        settings = self.workdir / "dovecot-oauth2.conf.ext"
        settings.write_text(
            "introspection_mode = post\n"
            f"introspection_url = {introspection_url}\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
            # Without a tokeninfo URL every token is introspected; said explicitly all the same.
            "force_introspection = yes\n"
            "timeout_msecs = 5000\n"
        )
        settings.chmod(0o644)
        self.oauth2_conf_path.write_text(
            "auth_mechanisms = $auth_mechanisms xoauth2 oauthbearer\n"
            "passdb {\n"
            "  driver = oauth2\n"
            "  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {settings}\n"
            "}\n"
        )

    def _copy_certs(self, certs: Certificates) -> Certificates:
        target = self.workdir / "certs"
        target.mkdir()
        copied: dict[str, Path] = {}
        for name in ("ca_file", "cert_file", "key_file", "untrusted_cert_file", "untrusted_key_file"):
            source: Path = getattr(certs, name)
            destination = target / source.name
            shutil.copyfile(source, destination)
            destination.chmod(0o644)
            copied[name] = destination
        return Certificates(**copied)

    # ── users and accounts ─────────────────────────────────────────────────────────────────────

    def add_user(
        self,
        name: str | None = None,
        password: str | None = None,
        *,
        settings: Mapping[str, str] | None = None,
    ) -> MailUser:
        """Create a mailbox user; without a name, a unique one (``user-<random>@postroom.test``).

        ``settings`` override Dovecot settings for this user only (passwd-file extra fields), e.g.
        ``{"imap_capability": "IMAP4rev1"}`` for a server that offers no IDLE. Values cannot
        contain whitespace.
        """
        user = MailUser(
            name=name or f"user-{secrets.token_hex(5)}@postroom.test",
            password=password or secrets.token_urlsafe(12),
        )
        fields = " ".join(f"userdb_{key}={value}" for key, value in (settings or {}).items())
        text = user.name + user.password + fields
        if (
            ":" in text
            or "\n" in text
            or "/" in user.name
            or any(len(v.split()) != 1 for v in (settings or {}).values())
        ):
            raise ValueError("no ':' or newline in users, no '/' in names, no whitespace in setting values")
        with self._users_lock:
            if user.name in self._users:
                raise DovecotError(f"user {user.name} exists")
            self._users[user.name] = user
        # Write aside and rename, so that Dovecot never reads half a file.
        path = self.users_dir / user.name
        staging = path.with_name(f".{user.name}.new")
        staging.write_text(f"{user.name}:{{PLAIN}}{user.password}::::::{fields}\n", encoding="utf-8")
        staging.chmod(0o644)
        staging.replace(path)
        return user

    @property
    def mail_uid(self) -> int:
        """The uid that owns the mail files (for tools that write into a Maildir directly)."""
        return self._identity.mail_uid

    def maildir(self, user: MailUser) -> Path:
        """The Maildir of ``user`` (home is ``mail_root/<name>``, ``mail_location = maildir:~/Maildir``)."""
        return self.mail_root / user.name / "Maildir"

    def imap_account(
        self, user: MailUser, encryption: ImapEncryption = "ssl", *, untrusted: bool = False, **changes: Any
    ) -> ImapAccount:
        """An :class:`ImapAccount` for ``user`` on this server; ``changes`` override any field."""
        port = self.ports.imaps if encryption == "ssl" else self.ports.imap
        account = ImapAccount(
            address=user.address,
            host=self.untrusted_host if untrusted else self.host,
            port=port,
            encryption=encryption,
            username=user.name,
            password=user.password,
        )
        return replace(account, **changes)

    def pop3_account(
        self, user: MailUser, encryption: Pop3Encryption = "ssl", *, untrusted: bool = False, **changes: Any
    ) -> Pop3Account:
        """A :class:`Pop3Account` for ``user`` on this server; ``changes`` override any field."""
        port = self.ports.pop3s if encryption == "ssl" else self.ports.pop3
        account = Pop3Account(
            address=user.address,
            host=self.untrusted_host if untrusted else self.host,
            port=port,
            encryption=encryption,
            username=user.name,
            password=user.password,
        )
        return replace(account, **changes)

    # ── driving a mailbox as its user ──────────────────────────────────────────────────────────

    @contextlib.contextmanager
    def imap(self, user: MailUser, folder: str | None = None) -> Iterator[Any]:
        """A logged-in IMAPClient (plain text on loopback), with ``folder`` selected when given."""
        client = IMAPClient(self.host, self.ports.imap, ssl=False, timeout=10)
        # IMAPClient turns on imaplib's protocol trace, which costs more than the commands.
        client._imap.debug = 0
        # Small writes must not wait for delayed ACKs (see postroom.sources.imap).
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            # AUTHENTICATE PLAIN carries a UTF-8 password, which LOGIN in imaplib cannot (RFC 4616).
            client.plain_login(user.name, user.password)
            if folder is not None:
                client.select_folder(folder)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(
        self,
        user: MailUser,
        raw: bytes,
        *,
        folder: str = "INBOX",
        flags: Sequence[str] = (),
        when: datetime | None = None,
    ) -> int:
        """APPEND one message as ``user``; return its UID (RFC 4315 APPENDUID)."""
        return self.append_all(user, [raw], folder=folder, flags=flags, when=when)[0]

    def append_all(
        self,
        user: MailUser,
        raws: Iterable[bytes],
        *,
        folder: str = "INBOX",
        flags: Sequence[str] = (),
        when: datetime | None = None,
        chunk: int = 500,
    ) -> list[int]:
        """APPEND messages over one connection, ``chunk`` per MULTIAPPEND (RFC 3502); return their UIDs."""
        uids: list[int] = []
        pending = list(raws)
        with self.imap(user) as client:
            if not client.has_capability("MULTIAPPEND"):
                # A user whose capabilities were narrowed (add_user(settings=...)) gets one by one.
                for raw in pending:
                    response = client.append(folder, raw, flags=tuple(flags), msg_time=when)
                    uids.extend(_appended_uids(response))
                return uids
            for start in range(0, len(pending), max(1, chunk)):
                items: list[dict[str, Any]] = []
                for raw in pending[start : start + chunk]:
                    item: dict[str, Any] = {"msg": raw, "flags": tuple(flags)}
                    if when is not None:
                        item["date"] = when
                    items.append(item)
                _typ, data = client.multiappend(folder, items)
                uids.extend(_appended_uids(b" ".join(part for part in data if isinstance(part, bytes))))
        return uids

    def mark_seen(self, user: MailUser, uids: Sequence[int], *, folder: str = "INBOX") -> None:
        with self.imap(user, folder) as client:
            client.add_flags(list(uids), [b"\\Seen"], silent=True)

    def flags(self, user: MailUser, *, folder: str = "INBOX") -> dict[int, frozenset[str]]:
        """Every message's flags by UID, read without changing them."""
        with self.imap(user) as client:
            client.select_folder(folder, readonly=True)
            response = client.fetch(client.search("ALL"), ["FLAGS"])
            return {
                int(uid): frozenset(_flag_text(flag) for flag in data[b"FLAGS"]) - {"\\Recent"}
                for uid, data in response.items()
            }

    def uidvalidity(self, user: MailUser, *, folder: str = "INBOX") -> int:
        with self.imap(user) as client:
            status = client.folder_status(folder, ["UIDVALIDITY"])
            return int(status[b"UIDVALIDITY"])

    def change_uidvalidity(self, user: MailUser, *, folder: str = "INBOX", value: int | None = None) -> int:
        """Give ``folder`` a new UIDVALIDITY (greater than the current one unless ``value`` is given).

        Dovecot ends the sessions that have the folder selected, as RFC 3501 §2.3.1.1 lets a server
        do when the UIDs of a session no longer hold.
        """
        new_value = value if value is not None else self.uidvalidity(user, folder=folder) + 1
        self.doveadm_run("mailbox", "update", "-u", user.name, "--uid-validity", str(new_value), folder)
        return new_value

    def create_folder(self, user: MailUser, folder: str) -> None:
        with self.imap(user) as client:
            client.create_folder(folder)

    def delete_folder(self, user: MailUser, folder: str) -> None:
        with self.imap(user) as client:
            client.delete_folder(folder)

    def kick(self, user: MailUser) -> None:
        """Drop every IMAP/POP3 session of ``user`` (the server says BYE and closes)."""
        self.doveadm_run("kick", user.name)

    def doveadm_run(self, *args: str) -> str:
        """Run ``doveadm`` against this instance; return its output."""
        result = subprocess.run(  # noqa: S603 - arguments come from the test harness
            [str(self.doveadm), "-c", str(self.config_path), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise DovecotError(f"doveadm {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    # ── the log ────────────────────────────────────────────────────────────────────────────────

    def log_text(self) -> str:
        """Everything Dovecot logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, *, timeout: float = 5.0, after: int = 0) -> str:
        """Wait until the log (from character ``after`` on) contains ``text``; return that line."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_text()[after:].splitlines():
                if text in line:
                    return line
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{text!r} not logged by Dovecot within {timeout} s")
            time.sleep(0.02)


def _render(template: str, values: dict[str, str]) -> str:
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(template)} - values.keys())
    if missing:
        raise DovecotError(f"the Dovecot template needs values for {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _service_identity() -> _Identity:
    uid = os.geteuid()
    if uid != 0:
        gid = os.getegid()
        return _Identity(
            login_user=pwd.getpwuid(uid).pw_name,
            internal_user=pwd.getpwuid(uid).pw_name,
            internal_group=grp.getgrgid(gid).gr_name,
            mail_uid=uid,
            mail_gid=gid,
        )
    # Dovecot never accesses mail as root; its packages create these two unprivileged users.
    internal = _existing_user("dovecot", "nobody")
    login = _existing_user("dovenull", "nobody")
    return _Identity(
        login_user=login.pw_name,
        internal_user=internal.pw_name,
        internal_group=grp.getgrgid(internal.pw_gid).gr_name,
        mail_uid=internal.pw_uid,
        mail_gid=internal.pw_gid,
    )


def _existing_user(*names: str) -> pwd.struct_passwd:
    for name in names:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise DovecotError(f"none of the users {', '.join(names)} exists to run Dovecot's services")


def _sibling_tool(binary: Path, name: str) -> Path:
    for candidate in (shutil.which(name), binary.parent / name, Path("/usr/bin") / name):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise DovecotError(f"{name} not found next to {binary}")


def _free_ports() -> DovecotPorts:
    """Four ports free on both loopback addresses, chosen by the kernel."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < 4:
            first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(first)
            first.bind((TRUSTED_ADDRESS, 0))
            port = first.getsockname()[1]
            second = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(second)
            try:
                second.bind((UNTRUSTED_ADDRESS, port))
            except OSError:
                continue
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return DovecotPorts(imap=ports[0], imaps=ports[1], pop3=ports[2], pop3s=ports[3])


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """End Dovecot's master and all its children (one process group) and reap the master.

    SIGTERM first, so that sessions say BYE to their clients as on a real shutdown; then, after a
    short grace, SIGKILL: Dovecot's master sometimes spends a second on an orderly exit, which tests
    need not wait for (its mail storage is crash-safe).
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_STOP_GRACE)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)
    # The children were killed with the master; wait until none of the group runs any more, so
    # that none outlives stop().
    deadline = time.monotonic() + 2.0
    while _group_running(process.pid) and time.monotonic() < deadline:
        time.sleep(0.005)


def _group_running(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in the process group.

    Killed children are reparented to PID 1, which in a container may reap them late; a zombie
    still answers kill(0), so on Linux /proc is asked for the processes' states instead.
    """
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _appended_uids(response: bytes) -> list[int]:
    match = _APPENDUID.search(response)
    if match is None:
        raise DovecotError(f"APPEND gave no APPENDUID: {response!r}")
    return _uid_set(match.group(2).decode())


def _uid_set(text: str) -> list[int]:
    """The UIDs of an RFC 4315 uid-set such as ``1:3,7``, in order."""
    uids: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition(":")
        uids.extend(range(int(first), int(last or first) + 1))
    return uids


def _flag_text(flag: bytes | str) -> str:
    return flag.decode() if isinstance(flag, bytes) else flag
