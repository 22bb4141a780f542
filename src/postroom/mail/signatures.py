"""Signatures that no delimiter announces: contact blocks under a closing, and legal disclaimers.

Marked signatures ("-- ", "____", mobile footers) are found by :mod:`postroom.mail.quotes`. What is left is
the corporate signature people paste under their name, and the disclaimer their mail gateway appends. Both
are recognised conservatively, because cutting a real sentence is worse than keeping a signature:

- a disclaimer is a paragraph that starts like one ("CONFIDENTIALITY NOTICE", "This e-mail and any
  attachments are confidential", "Diese E-Mail enthält vertrauliche …") — it and everything after it;
- a contact block is what follows a closing ("Best regards,") and the name under it, when most of its lines
  are contact details (phone numbers, URLs, addresses, "Title | Company" lines).

The closing and the name stay in the reply: they are part of what the person wrote (and the test corpus of
discourse/email_reply_trimmer keeps them too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CLOSING = re.compile(
    r"^[\s*_]*(?:"
    r"thanks?(?:\s+(?:a\s+lot|so\s+much|again|in\s+advance))?|thank\s+you(?:\s+(?:very\s+much|again))?|"
    r"many\s+thanks|cheers|best|best\s+wishes|all\s+the\s+best|(?:best|kind|warm|warmest|many)\s+regards|"
    r"regards|sincerely|yours\s+(?:sincerely|truly|faithfully)|respectfully|br|"
    r"mit\s+freundlichen\s+grüßen|mit\s+freundlichen\s+grüssen|freundliche\s+grüße|viele\s+grüße|"
    r"beste\s+grüße|liebe\s+grüße|herzliche\s+grüße|mfg|lg|vg|gruß|grüße|danke(?:\s+schön)?|"
    r"cordialement|bien\s+cordialement|bien\s+à\s+vous|salutations(?:\s+distinguées)?|merci(?:\s+d'avance)?|"
    r"saludos(?:\s+cordiales)?|un\s+saludo|atentamente|cordialmente|gracias|muchas\s+gracias|"
    r"atenciosamente|abraços|cumprimentos|obrigad[oa]|"
    r"cordiali\s+saluti|distinti\s+saluti|saluti|grazie(?:\s+mille)?|"
    r"met\s+vriendelijke\s+groet(?:en)?|vriendelijke\s+groet(?:en)?|groeten|mvg|bedankt|"
    r"med\s+vänliga\s+hälsningar|vänliga\s+hälsningar|hälsningar|mvh|tack|vennlig\s+hilsen|"
    r"med\s+venlig\s+hilsen|venlig\s+hilsen|hilsen|ystävällisin\s+terveisin|terveisin|kiitos|"
    r"pozdrawiam|z\s+poważaniem|dziękuję|s\s+pozdravem|děkuji|üdvözlettel|köszönöm|"
    r"с\s+уважением|спасибо|всего\s+доброго|з\s+повагою|дякую|με\s+εκτίμηση|ευχαριστώ|"
    r"saygılarımla|teşekkürler|よろしくお願いいたします|よろしくお願いします|谢谢|謝謝|此致敬礼|감사합니다"
    r")[\s,.!。！]*$",
    re.IGNORECASE,
)
_PHONE = re.compile(r"(?:\+|\b\d|\(\d)[\d\s().\-/]{6,}\d")
_URL = re.compile(r"https?://|\bwww\.|\b[\w.-]+\.(?:com|org|net|de|fr|io|co|uk|eu|example)\b", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_LABEL = re.compile(
    r"^\s*(?:t|m|p|f|e|w|tel|tél|phone|mobile|mob|cell|fax|handy|telefon|tlf|email|e-mail|web|skype)"
    r"\s*[.:]",
    re.IGNORECASE,
)
_DISCLAIMER = re.compile(
    r"^\s*(?:confidentiality\s+(?:notice|note|statement)|disclaimer|legal\s+notice|privileged\s*(?:&|and)\s*"
    r"confidential|this\s+(?:e-?mail|message|communication)(?:\s+message)?(?:,?\s+including\s+any"
    r"\s+attachments,?)?(?:\s+and\s+any\s+(?:files|attachments)(?:\s+transmitted\s+with\s+it)?)?"
    r"\s+(?:is|are|may\s+contain|contains|and)\b.{0,120}(?:confidential|privileged|intended)|"
    r"the\s+information\s+(?:contained\s+)?in\s+this\s+(?:e-?mail|message|communication)|"
    r"please\s+consider\s+the\s+environment|"
    r"diese\s+(?:e-?mail|nachricht)\s+(?:enthält|kann)\s+.{0,40}vertraulich|"
    r"ce\s+(?:message|courriel|e-?mail)\s+(?:et\s+(?:toutes\s+)?(?:les|ses)\s+pièces\s+jointes\s+)?"
    r"(?:est|sont|peut|contient)\b.{0,80}confidenti|"
    r"este\s+(?:mensaje|correo)\s+.{0,80}confidencial|esta\s+mensagem\s+.{0,80}confidencia|"
    r"questo\s+messaggio\s+.{0,80}(?:riservat|confidenzial)|"
    r"dit\s+(?:e-?mail)?bericht\s+.{0,80}vertrouwelijk|denna\s+e-?post\s+.{0,80}konfidentiell|"
    r"niniejsza\s+wiadomość\s+.{0,80}poufn|данное\s+сообщение\s+.{0,80}конфиденциальн|"
    r"本邮件.{0,40}保密|この(?:メール|電子メール).{0,40}機密"
    r")",
    re.IGNORECASE | re.DOTALL,
)
_MAX_BLOCK = 14  # a contact block longer than this is more likely text than a signature


@dataclass(frozen=True, slots=True)
class SignatureSplit:
    body: str
    signature: str


def _contact_like(line: str) -> bool:
    return bool(
        _LABEL.match(line)
        or _URL.search(line)
        or _EMAIL.search(line)
        or " | " in line
        or (_PHONE.search(line) and sum(ch.isdigit() for ch in line) >= 7)
    )


def _disclaimer_start(lines: list[str]) -> int | None:
    """Index of the first line of a disclaimer paragraph, if the reply ends with one."""
    for i in range(2, len(lines)):
        # Only the first line of a paragraph can start a disclaimer.
        if lines[i - 1].strip() or not lines[i].strip():
            continue
        if _DISCLAIMER.match(" ".join(lines[i : i + 3])):
            return i
    return None


def _contact_block_start(lines: list[str]) -> int | None:
    """Index of the first line of a contact block under a closing and a name, if there is one."""
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    tail = nonblank[-_MAX_BLOCK - 2 :]
    for position, index in enumerate(tail):
        if not _CLOSING.match(lines[index]):
            continue
        rest = tail[position + 1 :]
        if len(rest) < 2:
            return None
        # The first line after the closing is the name; what follows it is the block.
        block = rest[1:]
        contact = sum(1 for i in block if _contact_like(lines[i]))
        short = all(len(lines[i].strip()) <= 80 for i in block)
        if short and contact and contact * 2 >= len(block):
            return block[0]
        return None
    return None


def split_signature(text: str) -> SignatureSplit:
    """Move an unmarked corporate signature or disclaimer at the end of ``text`` into ``signature``."""
    if not text:
        return SignatureSplit(text, "")
    lines = text.split("\n")
    disclaimer = _disclaimer_start(lines)
    # The contact block sits above the disclaimer, if there is one.
    contact = _contact_block_start(lines[:disclaimer] if disclaimer is not None else lines)
    cut = contact if contact is not None else disclaimer
    if cut is None:
        return SignatureSplit(text, "")
    body = "\n".join(lines[:cut]).rstrip()
    signature = "\n".join(lines[cut:]).strip("\n")
    if not body.strip():
        return SignatureSplit(text, "")
    return SignatureSplit(body, signature)
