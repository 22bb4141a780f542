"""Is this mail from a person? Auto-replies, bulk and list mail, bounces, and our own mail coming back.

These decide whether anyone (an agent's automation, an AI) may answer automatically, so each rule records
why it fired, and the order matters: a loop beats everything (answering it would loop for ever), a bounce
beats an auto-reply (a bounce also carries ``Auto-Submitted``), an auto-reply beats bulk (Gmail's vacation
responder also says ``Precedence: bulk``).

- Loops: a Message-ID that :func:`postroom.mail.threading.make_message_id` made for one of our domains,
  or mail From one of our addresses that carries our ``X-Postroom-Loop`` marker.
- Bounces: ``multipart/report; report-type=delivery-status`` (RFC 3464, RFC 6522) read for the failed
  recipients, the status (RFC 3463) and the original Message-ID; otherwise mailer-daemon/postmaster senders,
  ``X-Failed-Recipients`` (Exim) and bounce subjects, with the same facts dug out of the text.
- Auto-replies: ``Auto-Submitted`` other than ``no`` (RFC 3834 §5), ``X-Autoreply``, ``X-Autorespond``,
  ``X-Autoresponder``, ``Precedence: auto_reply``, ``X-Auto-Response-Suppress`` with OOF/All/AutoReply
  (Exchange), ``X-MS-Exchange-Generated-Message-Source`` … and the localised "Automatic reply:" /
  "Out of Office" subjects, read receipts (``report-type=disposition-notification``, RFC 8098).
- Bulk: ``Precedence: bulk|junk|list``, ``List-Id`` / ``List-Unsubscribe`` (RFC 2919, RFC 2369) unless the list
  is one of our own addresses (a Google Group in front of the helpdesk), ESP campaign headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from postroom.mail.addresses import normalize_email, parse_address_list
from postroom.mail.headers import Headers, parse_msg_ids, parse_params, unfold
from postroom.mail.mime import Part, parse_part
from postroom.mail.model import Address, Bounce, Classification, Kind
from postroom.mail.threading import is_own_message_id

LOOP_HEADER = "X-Postroom-Loop"

_DAEMON_LOCALS = frozenset(
    {
        "mailer-daemon",
        "postmaster",
        "mail-daemon",
        "mailerdaemon",
        "mailer_daemon",
        "bounce",
        "bounces",
        "mdaemon",
        "mail.delivery.subsystem",
    }
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undeliver(?:ed|able)|undelivered\s+mail|delivery\s+(?:status\s+notification|failure|failed|"
    r"has\s+failed|notification|report)|mail\s+delivery\s+(?:failed|failure|system|subsystem)|failure\s+notice|"
    r"returned\s+mail|mail\s+system\s+error|non[- ]?delivery|message\s+not\s+delivered|could\s+not\s+send|"
    r"warning:\s*could\s+not\s+send|delayed\s+mail|delivery\s+delayed|"
    r"unzustellbar|nicht\s+zustellbar|non\s+remis|non\s+distribuable|no\s+se\s+puede\s+entregar|"
    r"no\s+entregado|non\s+recapitabile|onbestelbaar|kan\s+niet\s+worden\s+bezorgd|olevererbart|"
    r"nie\s+można\s+dostarczyć|недоставлен|не\s+доставлено|无法投递|未送達|배달되지\s+않음)",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic\s+reply|auto(?:matic)?[- ]?(?:reply|response)|out\s+of\s+(?:the\s+)?office|"
    r"away\s+from\s+(?:the\s+)?office|on\s+vacation|vacation\s+(?:reply|notice)|autoreply|"
    r"automatische\s+antwort|abwesenheitsnotiz|abwesend|réponse\s+automatique|absence\s+du\s+bureau|"
    r"respuesta\s+automática|fuera\s+de\s+la\s+oficina|resposta\s+automática|ausente|risposta\s+automatica|"
    r"fuori\s+sede|automatisch\s+antwoord|afwezig|autosvar|automatisk\s+svar|frånvaro|fraværende|"
    r"automaattinen\s+vastaus|odpowiedź\s+automatyczna|automatická\s+odpověď|automatikus\s+válasz|"
    r"автоматический\s+ответ|автоответ|αυτόματη\s+απάντηση|otomatik\s+yanıt|自动回复|自動回覆|自動応答|"
    r"不在通知|자동\s*회신|부재\s*중)\s*[:：\-]?",
    re.IGNORECASE,
)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45]\d\d)[ -]")
_ADDRESS = re.compile(r"[A-Za-z0-9._%+'=!#$&*/?^`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ORIGINAL_MARK = re.compile(
    r"original\s+message|copy\s+of\s+the\s+message|message\s+headers?\s+follow|returned\s+message|"
    r"undelivered\s+message|below\s+this\s+line|original\s+headers?",
    re.IGNORECASE,
)
_MESSAGE_ID_LINE = re.compile(r"^\s*message-id\s*:\s*(<[^>\r\n]+>|\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class ClassifyInput:
    """What classification looks at, already parsed."""

    headers: Headers
    root: Part
    reports: list[Part]
    from_: Address | None
    subject: str
    message_id: str | None
    text: str
    own_addresses: frozenset[str]


def _own_domains(own: frozenset[str]) -> frozenset[str]:
    return frozenset(a.rpartition("@")[2].lower() for a in own if "@" in a)


def _loop(data: ClassifyInput) -> list[str]:
    reasons: list[str] = []
    own = data.own_addresses
    if data.message_id and is_own_message_id(data.message_id, _own_domains(own)):
        reasons.append("Message-ID made by Postroom")
    marker = data.headers.get(LOOP_HEADER)
    if marker is not None and data.from_ is not None and data.from_.email.lower() in own:
        reasons.append(f"{LOOP_HEADER} from our own address {data.from_.email}")
    elif marker is not None and normalize_email(marker).lower() in own:
        reasons.append(f"{LOOP_HEADER}: {marker}")
    return reasons


def _fields(text: str) -> list[dict[str, str]]:
    """Header-style blocks separated by blank lines (the body of a message/delivery-status, RFC 3464 §2)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            last = ""
            continue
        if line[:1] in (" ", "\t") and last in current:
            current[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep:
            last = name.strip().lower()
            current.setdefault(last, value.strip())
    if current:
        blocks.append(current)
    return blocks


def _after_type(value: str) -> str:
    """``rfc822; user@example.com`` → ``user@example.com`` (RFC 3464 address-type and diagnostic-type)."""
    return value.split(";", 1)[1].strip() if ";" in value else value.strip()


def _status_of(text: str) -> str | None:
    match = _STATUS.search(text)
    return match.group(0) if match else None


def _original_message_id(root: Part, reports: list[Part], text: str) -> str | None:
    for part in root.walk():
        if part.message is not None:
            ids = parse_msg_ids(part.message.headers.text("message-id"))
            if ids:
                return ids[0]
    for part in reports:
        if part.content_type in ("text/rfc822-headers", "message/global-headers"):
            inner = parse_part(part.decoded() + b"\n\n")
            ids = parse_msg_ids(inner.headers.text("message-id"))
            if ids:
                return ids[0]
    # Bounces without a report quote the original headers in the text.
    mark = _ORIGINAL_MARK.search(text)
    if mark:
        found = _MESSAGE_ID_LINE.search(text, mark.start())
        if found:
            ids = parse_msg_ids(found.group(1))
            if ids:
                return ids[0]
    return None


def _dsn_bounce(reports: list[Part]) -> Bounce | None:
    for part in reports:
        if part.content_type not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        blocks = _fields(part.decoded().decode("utf-8", "replace"))
        recipients = [b for b in blocks if "final-recipient" in b or "original-recipient" in b or "action" in b]
        failed: list[str] = []
        statuses: list[str] = []
        diagnostics: list[str] = []
        permanent = False
        for block in recipients:
            action = block.get("action", "").lower().split()[0] if block.get("action") else ""
            status = _status_of(block.get("status", "")) or _status_of(block.get("diagnostic-code", ""))
            recipient = _after_type(block.get("final-recipient") or block.get("original-recipient") or "")
            failing = action == "failed" or (not action and status is not None and status.startswith("5"))
            delayed = action == "delayed" or (status is not None and status.startswith("4"))
            if failing or delayed:
                if recipient and failing:
                    failed.append(normalize_email(recipient.strip("<>")))
                if status:
                    statuses.append(status)
                if block.get("diagnostic-code"):
                    diagnostics.append(_after_type(block["diagnostic-code"]))
                permanent = permanent or failing
        return Bounce(
            failed_recipients=tuple(dict.fromkeys(failed)),
            status=statuses[0] if statuses else None,
            diagnostic=diagnostics[0] if diagnostics else None,
            permanent=permanent,
        )
    return None


def _text_bounce(data: ClassifyInput) -> Bounce:
    failed_header = data.headers.get("x-failed-recipients")
    failed = [a.email for a in parse_address_list(failed_header)] if failed_header else []
    text = data.text
    mark = _ORIGINAL_MARK.search(text)
    report = text[: mark.start()] if mark else text
    if not failed:
        own = data.own_addresses
        from_email = data.from_.email.lower() if data.from_ else ""
        for found in _ADDRESS.findall(report):
            email = normalize_email(found)
            if email.lower() not in own and email.lower() != from_email and email not in failed:
                failed.append(email)
            if len(failed) >= 20:
                break
    status = _status_of(report)
    if status is None:
        code = _SMTP_CODE.search(report)
        status = f"{code.group(1)[0]}.0.0" if code else None
    diagnostic = None
    for line in report.splitlines():
        if _STATUS.search(line) or _SMTP_CODE.search(line):
            diagnostic = line.strip()[:500]
            break
    permanent = not (status or "5").startswith("4") and not re.search(
        r"\bdelayed\b|will\s+(?:keep|continue)\s+trying|warning", data.subject + " " + report[:500], re.I
    )
    return Bounce(tuple(failed), status, diagnostic, permanent=permanent)


def classify(data: ClassifyInput) -> Classification:
    """Decide what kind of mail this is, with the reasons."""
    headers = data.headers
    reasons = _loop(data)
    if reasons:
        return Classification(Kind.LOOP, tuple(reasons))

    content_type = headers.text("content-type") or ""
    report_type = ""
    if content_type.lower().startswith("multipart/report"):
        report_type = parse_params(content_type).params.get("report-type", "").lower()
    from_local = data.from_.email.rpartition("@")[0].lower() if data.from_ else ""
    is_daemon = from_local in _DAEMON_LOCALS or from_local.startswith(("mailer-daemon", "postmaster"))

    if report_type in ("delivery-status", "global-delivery-status"):
        bounce = _dsn_bounce(data.reports) or _text_bounce(data)
        original = _original_message_id(data.root, data.reports, data.text)
        bounce = Bounce(bounce.failed_recipients, bounce.status, bounce.diagnostic, original, bounce.permanent)
        return Classification(Kind.BOUNCE, (f"multipart/report; report-type={report_type} (RFC 3464)",), bounce)

    bounce_reasons: list[str] = []
    if headers.get("x-failed-recipients"):
        bounce_reasons.append("X-Failed-Recipients")
    if is_daemon and (
        _BOUNCE_SUBJECT.search(data.subject) or not data.subject or "deliver" in data.text[:2000].lower()
    ):
        bounce_reasons.append(f"sender {data.from_.email if data.from_ else ''}")
    elif _BOUNCE_SUBJECT.search(data.subject) and (
        is_daemon or headers.get("auto-submitted") or (headers.text("return-path") or "").strip() == "<>"
    ):
        bounce_reasons.append(f"bounce subject {data.subject[:60]!r}")
    if bounce_reasons:
        bounce = _text_bounce(data)
        original = _original_message_id(data.root, data.reports, data.text)
        bounce = Bounce(bounce.failed_recipients, bounce.status, bounce.diagnostic, original, bounce.permanent)
        return Classification(Kind.BOUNCE, tuple(bounce_reasons), bounce)

    auto: list[str] = []
    auto_submitted = headers.get("auto-submitted")
    if auto_submitted and auto_submitted.split(";")[0].strip().lower() not in ("no", ""):
        auto.append(f"Auto-Submitted: {auto_submitted[:60]}")
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autogenerated", "x-auto-reply"):
        value = headers.get(name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            auto.append(f"{name}: {value[:40]}")
    precedence = (headers.get("precedence") or headers.get("x-precedence") or "").strip().lower()
    if precedence == "auto_reply":
        auto.append("Precedence: auto_reply")
    suppress = (headers.get("x-auto-response-suppress") or "").lower()
    if re.search(r"\b(?:all|oof|autoreply)\b", suppress) and _AUTO_SUBJECT.search(data.subject):
        auto.append(f"X-Auto-Response-Suppress: {suppress[:40]}")
    source = headers.get("x-ms-exchange-generated-message-source")
    if source:
        auto.append(f"X-MS-Exchange-Generated-Message-Source: {source[:60]}")
    if report_type in ("disposition-notification",):
        auto.append("read receipt (RFC 8098)")
    if _AUTO_SUBJECT.search(data.subject):
        auto.append(f"auto-reply subject {data.subject[:60]!r}")
    if auto:
        return Classification(Kind.AUTO_REPLY, tuple(auto))

    bulk: list[str] = []
    if precedence in ("bulk", "junk", "list"):
        bulk.append(f"Precedence: {precedence}")
    list_id = headers.get("list-id")
    own_list = _is_own_list(headers, data.own_addresses)
    if list_id and not own_list:
        bulk.append(f"List-Id: {unfold(list_id)[:80]}")
    if headers.get("list-unsubscribe") and not own_list:
        bulk.append("List-Unsubscribe")
    for name in (
        "x-campaign",
        "x-campaignid",
        "x-mailchimp-campaign",
        "x-mc-user",
        "x-sg-eid",
        "x-mailgun-tag",
        "x-ses-outgoing",
        "feedback-id",
        "x-feedback-id",
        "x-newsletter",
    ):
        if name in headers and name not in ("feedback-id", "x-ses-outgoing"):
            bulk.append(name)
    if precedence in ("bulk", "junk", "list") and own_list:
        bulk = [b for b in bulk if not b.startswith("Precedence: list")]
    if bulk:
        return Classification(Kind.BULK, tuple(bulk))
    return Classification(Kind.HUMAN, ())


def _is_own_list(headers: Headers, own: frozenset[str]) -> bool:
    """A list that is one of our own addresses (a Google Group or Mailman list in front of the helpdesk)."""
    if not own:
        return False
    for name in ("list-post", "list-id", "x-original-to", "delivered-to"):
        value = headers.get(name)
        if not value:
            continue
        lowered = value.lower()
        for address in own:
            local, _, domain = address.partition("@")
            if address in lowered or (name == "list-id" and f"{local}.{domain}" in lowered):
                return True
    return False
