"""Mailbox addresses: parsed from header values tolerantly, normalised for matching (RFC 5322 §3.4).

The parser splits the raw value first and decodes RFC 2047 encoded words in display names afterwards
(RFC 2047 §5), so that a decoded name holding a comma or an angle bracket cannot change the structure.
It accepts what mailers really write: unquoted commas in names that are quoted elsewhere, missing angle
brackets, groups (``undisclosed-recipients:;``), comments as names (``a@b (Name)``), unclosed quotes and
brackets, and encoded words that hide a whole ``Name <address>``.
"""

from __future__ import annotations

import re

from postroom.mail.headers import decode_words, unfold
from postroom.mail.model import Address

_TOKEN = re.compile(
    r"""
    (?P<q>"(?:\\.|[^"\\])*"?)                                    # quoted string (maybe unclosed)
  | (?P<c>\((?:\\.|[^()\\]|\((?:\\.|[^()\\])*\))*\)?)            # comment, one level of nesting
  | (?P<a><[^<>]*>?)                                             # angle address (maybe unclosed)
  | (?P<s>[,;:])                                                 # separators
  | (?P<w>[^\s"(),;:<>]+|[<>)])                                  # atoms, dots, stray brackets
  | (?P<ws>\s+)
    """,
    re.VERBOSE,
)
_SPACES = re.compile(r"\s+")
_COMMENT = re.compile(r"\((?:\\.|[^()\\])*\)")
# Characters that end or break a header line somewhere: C0 controls (CR and LF first), DEL, the C1
# controls (U+0085 NEL is a line break to some readers) and the Unicode line and paragraph separators.
# None of them has a place in an address or a display name typed by a person (RFC 5322 §2.2, §3.2.3).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def unsafe_character(value: str) -> str | None:
    """The first character of ``value`` that must never reach a header, or ``None``.

    Used to refuse address input as a whole: a parser that tolerates such a character would unfold
    ``"victim@a.test\\r\\nBcc: other@b.test"`` into a different recipient list than the person meant.
    """
    match = _UNSAFE.search(value)
    return match.group() if match else None


def check_header_safe(field: str, value: str) -> str:
    """``value`` unchanged, or ``ValueError`` naming ``field`` and the character (escaped) it must not hold."""
    bad = unsafe_character(value)
    if bad is not None:
        raise ValueError(f"{field} must not contain control characters or line separators (found {bad!r})")
    return value


def _idna_decode(domain: str) -> str:
    if "xn--" not in domain:
        return domain
    labels = []
    for label in domain.split("."):
        decoded = label
        if label.startswith("xn--"):
            try:
                decoded = label.encode("ascii").decode("idna")
            except UnicodeError:
                decoded = label
        labels.append(decoded)
    return ".".join(labels)


def normalize_email(email: str) -> str:
    """An address as Postroom stores it: no brackets or spaces, domain lower-cased and IDNA decoded.

    The local part keeps its case: RFC 5321 §2.4 lets the receiving server treat it as case-sensitive.
    Compare addresses with :func:`email_key` when a case-insensitive match is wanted.
    """
    email = email.strip().strip("<>").strip()
    if "(" in email:
        # RFC 5322 §3.2.2: comments may sit between the parts of an address; they are not part of it.
        for _ in range(4):
            without = _COMMENT.sub("", email)
            if without == email:
                break
            email = without
    if not email:
        return ""
    if '"' not in email:
        email = _SPACES.sub("", email)
    # A source route (RFC 5322 §4.4 obs-route, "@relay:user@host") names relays, not the mailbox.
    if email.startswith("@") and ":" in email:
        email = email.split(":", 1)[1]
    if email.lower().startswith("mailto:"):
        email = email[7:]
    local, at, domain = email.rpartition("@")
    if not at:
        return email
    domain = _idna_decode(domain.strip(".").lower())
    return f"{local}@{domain}"


def email_key(email: str) -> str:
    """A case-insensitive key for matching one person's address across messages."""
    return normalize_email(email).lower()


def _clean_name(name: str) -> str:
    name = _SPACES.sub(" ", decode_words(name) if "=?" in name else name).strip()
    # Outlook writes 'Name' in single quotes inside the double quotes; the quotes are not part of the name.
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
        name = name[1:-1].strip()
    return name


def _join_name(run: list[str]) -> str:
    return "".join(_unquote(t) if t.startswith('"') else t for t in run)


def _unquote(text: str) -> str:
    body = text[1:-1] if len(text) >= 2 and text.endswith('"') else text[1:]
    return re.sub(r"\\(.)", r"\1", body)


class _Builder:
    """Collects the tokens of one address until a separator finishes it."""

    __slots__ = ("angle", "comments", "runs", "space")

    def __init__(self) -> None:
        self.runs: list[list[str]] = []  # words separated by whitespace; a run is glued tokens
        self.angle: str | None = None
        self.comments: list[str] = []
        self.space = True

    def word(self, text: str) -> None:
        if self.space or not self.runs:
            self.runs.append([text])
        else:
            self.runs[-1].append(text)
        self.space = False

    def _merge_addr_spec(self) -> None:
        """Join words that CFWS split inside an addr-spec ("jdoe@test . example", "c@(host)public.example")."""
        merged: list[list[str]] = []
        for run in self.runs:
            text = "".join(run)
            if merged and ("".join(merged[-1]).endswith(("@", ".")) or text.startswith(("@", "."))):
                merged[-1] = [*merged[-1], *run]
            else:
                merged.append(list(run))
        self.runs = merged

    def empty(self) -> bool:
        return not self.runs and self.angle is None and not self.comments

    def build(self) -> Address | None:
        if self.angle is not None and ":" in self.angle and self.angle.rstrip().endswith(";"):
            # A group written inside angle brackets ("<Undisclosed-Recipient:@host;>") names nobody.
            return None
        if not self.runs and self.angle is None:
            return None  # only comments, e.g. "(the end of the group)"
        if self.angle is not None:
            email = normalize_email(self.angle)
            name = " ".join(_join_name(run) for run in self.runs)
            if not name and self.comments:
                name = self.comments[0]
            name = _clean_name(name)
            if not email and not name:
                return None
            if "@" not in email and "@" in name and "<" in name:
                # An encoded word that held "Name <address>" decodes into the name: parse it again.
                again = parse_address_list(name)
                if again:
                    return again[0]
            if "@" not in email:
                return Address(email="", name=name or email) if (name or email) else None
            return Address(email=email, name=name)
        self._merge_addr_spec()
        words = ["".join(run) for run in self.runs]
        with_at = [i for i, w in enumerate(words) if "@" in w]
        if with_at:
            email = normalize_email(words[with_at[-1]])
            rest = [_join_name(run) for i, run in enumerate(self.runs) if i != with_at[-1]]
            name = _clean_name(" ".join(rest) if rest else (self.comments[0] if self.comments else ""))
            return Address(email=email, name=name)
        name = _clean_name(
            " ".join(_join_name(run) for run in self.runs) or (self.comments[0] if self.comments else "")
        )
        if "@" in name:
            again = parse_address_list(name)
            if again:
                return again[0]
        if not name:
            return None
        # Without "@" there is no address to write to (a local-only "MAILER-DAEMON" cannot be answered
        # either); the text is kept as the name.
        return Address(email="", name=name)


def parse_address_list(value: str) -> tuple[Address, ...]:
    """Every mailbox in an address-list header value (To, Cc, From with several authors …).

    ``value`` is the raw header text (unfolded or not, encoded words still encoded). Group names are
    dropped and their members kept (RFC 5322 §3.4: a group is a name for a list of mailboxes). Entries
    with neither address nor name are left out; entries with a name but no address are kept with an empty
    ``email`` so that nothing a sender wrote disappears silently.
    """
    if not value:
        return ()
    value = unfold(value)
    out: list[Address] = []
    current = _Builder()
    in_group = False

    def finish() -> None:
        nonlocal current
        if not current.empty():
            built = current.build()
            if built is not None and (built.email or built.name):
                out.append(built)
        current = _Builder()

    for match in _TOKEN.finditer(value):
        kind = match.lastgroup
        text = match.group()
        if kind == "ws":
            current.space = True
        elif kind == "q":
            current.word(text)
        elif kind == "c":
            inner = text[1:-1] if text.endswith(")") else text[1:]
            current.comments.append(inner.strip())
            current.space = True
        elif kind == "a":
            inner = text[1:-1] if text.endswith(">") else text[1:]
            if current.angle is None or not current.angle.strip():
                current.angle = inner
            current.space = True
        elif text == ",":
            finish()
        elif text == ";":
            finish()
            in_group = False
        elif text == ":":
            has_at = any("@" in "".join(run) for run in current.runs)
            if current.angle is None and not has_at and not in_group:
                # RFC 5322 §3.4 group: "display-name:" starts it; the name names no mailbox.
                current = _Builder()
                in_group = True
            else:
                current.word(":")
        else:
            current.word(text)
    finish()
    return tuple(out)


def parse_address(value: str) -> Address | None:
    """The first mailbox in a header value, or ``None`` when there is none with an address."""
    for address in parse_address_list(value):
        if address.email:
            return address
    return None


def format_address(address: Address) -> str:
    """An address for display and logs (not for writing headers; :mod:`postroom.mail.compose` does that)."""
    return address.formatted()
