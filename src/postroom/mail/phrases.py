"""The words mail clients write around quoted history and signatures, in the languages our customers use.

Collected from what clients actually emit (Gmail, Outlook desktop and web, Apple Mail, Thunderbird, Yahoo,
K-9, mobile clients) in English, German, French, Spanish, Portuguese, Italian, Dutch, Swedish, Norwegian,
Danish, Finnish, Polish, Czech, Slovak, Hungarian, Romanian, Russian, Ukrainian, Bulgarian, Greek, Turkish,
Chinese, Japanese, Korean and Vietnamese. Kept as data in one place so that quote detection, header-block
detection and subject normalisation agree.
"""

from __future__ import annotations

import re

# --- "On <date>, <name> wrote:" ---------------------------------------------------------------------

# How an attribution line starts ("On", "Le", "Am" …). A line starting with a date is handled apart.
ATTRIBUTION_OPENERS = (
    "on",
    "le",
    "am",
    "el",
    "em",
    "il",
    "op",
    "den",
    "dne",
    "dňa",
    "dnia",
    "w dniu",
    "pe",
    "în",
    "у",
    "в",
    "на",
    "στις",
    "vào",
    "在",
    "于",
    "於",
    "日時",
    "at",
)

# The verb that closes an attribution line ("wrote", "a écrit" …), longest variants first.
WROTE_VERBS = (
    r"wrote",
    r"writes",
    r"a\s+écrit",
    r"a\s+ecrit",
    r"schrieb",
    r"geschrieben",
    r"escribió",
    r"escribio",
    r"escreveu",
    r"ha\s+scritto",
    r"scrisse",
    r"het\s+volgende\s+geschreven",
    r"schreef",
    r"geschreven",
    r"skrev",
    r"skriver",
    r"kirjoitti",
    r"napisał\(a\)",
    r"napisała",
    r"napisał",
    r"napsal\(a\)",
    r"napsala",
    r"napsal",
    r"napísal\(a\)",
    r"napísal",
    r"ezt\s+írta",
    r"írta",
    r"a\s+scris",
    r"написал\(а\)",
    r"написала",
    r"написал",
    r"написав\(ла\)",
    r"написав",
    r"написа",
    r"пише",
    r"έγραψε",
    r"yazdı",
    r"şunu\s+yazdı",
    r"đã\s+viết",
    r"wrote\s+the\s+following",
)

_CJK_VERBS = ("写道", "寫道", "님이 작성", "작성", "書きました", "のメッセージ")
# Word verbs must stand alone ("WROTE_REGEX" is not an attribution); CJK verbs follow names directly.
WROTE = (
    r"(?:(?<![^\W\d_])(?:"
    + "|".join(WROTE_VERBS)
    + r")(?![^\W\d_])|"
    + "|".join(re.escape(v).replace(r"\ ", r"\s*") for v in _CJK_VERBS)
    + ")"
)
# What may follow the verb: nothing but a colon (and Zoho's "----"), or a date ending in a colon
# ("schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:", "het volgende geschreven:").
_AFTER_VERB = r"(?:\s*[:：]?\s*(?:-{2,}\s*)?|[^\n]{1,120}?[:：]\s*)$"
_OPENER = "(?:" + "|".join(re.escape(o) for o in ATTRIBUTION_OPENERS) + ")"

# An attribution that starts with an opener word or a date, after wrapped lines are joined with spaces.
ATTRIBUTION_OPENED = re.compile(
    r"^[\s>*-]*(?:" + _OPENER + r"(?![^\W\d_])|\d).{0,300}?" + WROTE + _AFTER_VERB,
    re.IGNORECASE | re.DOTALL,
)
# "Name <address> wrote:" / "понедельник, 6 октября 2014 г. пользователь lidel написал:": without an
# opener, an address or a time or a year must be there, so that "I wrote one of my own:" stays text.
ATTRIBUTION_BARE = re.compile(
    r"^[\s>*-]*(?=[^\n]*?(?:<|@|\d{1,2}[:.]\d{2}|\d{4}))[^\n]{1,300}?" + WROTE + _AFTER_VERB,
    re.IGNORECASE,
)
# Does the line start like an attribution? (cheap test before joining wrapped lines)
ATTRIBUTION_START = re.compile(r"^[\s>*-]*(?:" + _OPENER + r"(?![^\W\d_])|\d)", re.IGNORECASE)

WROTE_SEARCH = re.compile(WROTE, re.IGNORECASE)
# Lower-case stems of the verbs: plain substring tests on the lower-cased body tell which verbs occur at
# all (an alternation of forty verbs costs the regex engine forty tries at every character).
WROTE_STEMS = (
    "wrote",
    "writes",
    "écrit",
    "ecrit",
    "schrieb",
    "geschr",
    "escrib",
    "escrev",
    "scritto",
    "scrisse",
    "schreef",
    "skrev",
    "skriver",
    "kirjoitti",
    "napisa",
    "napsa",
    "napísa",
    "írta",
    "scris",
    "написа",
    "пише",
    "έγραψε",
    "yazdı",
    "viết",
    "写道",
    "寫道",
    "작성",
    "書きました",
    "のメッセージ",
)

# Gmail's attribution in several locales starts with a numeric date: "2016-10-24 15:36 GMT+02:00 Name <a@b>:",
# "2016年3月3日(木) 17:21 Name <a@b>:", "2016년 3월 3일 (목) 오후 5:21, Name <a@b>님이 작성:".
NUMERIC_DATE_ATTRIBUTION = re.compile(
    r"^[\s>*]*\d{4}(?:[-/.]|年|년\s?)\d{1,2}(?:[-/.]|月|월\s?)\d{1,2}(?:日|일)?\.?\s*"
    r"(?:.*\d{1,2}:\d{2}.*|.*(?:GMT|UTC|<[^>]*@|@).*|.*[:：])\s*$",
    re.DOTALL,
)

# --- "-----Original Message-----", forwarded-message banners --------------------------------------------

ORIGINAL_MESSAGE = re.compile(
    r"^[\s>*_]*-{2,}\s*(?:"
    r"original\s+message|ursprüngliche\s+nachricht|message\s+d['’]origine|mensaje\s+original|"
    r"mensagem\s+original|messaggio\s+originale|oorspronkelijk\s+bericht|origineel\s+bericht|"
    r"ursprungligt\s+meddelande|opprinnelig\s+melding|oprindelig\s+meddelelse|alkuperäinen\s+viesti|"
    r"wiadomość\s+oryginalna|oryginalna\s+wiadomość|původní\s+zpráva|pôvodná\s+správa|eredeti\s+üzenet|"
    r"mesaj\s+original|исходное\s+сообщение|оригинальное\s+сообщение|вихідне\s+повідомлення|"
    r"αρχικό\s+μήνυμα|özgün\s+ileti|orijinal\s+mesaj|原始邮件|原始郵件|元のメッセージ|원본\s+메시지|"
    r"forwarded\s+message|weitergeleitete\s+nachricht|message\s+transféré|mensaje\s+reenviado|"
    r"mensaje\s+transferido|mensagem\s+encaminhada|messaggio\s+inoltrato|doorgestuurd\s+bericht|"
    r"vidarebefordrat\s+meddelande|videresendt\s+melding|videresendt\s+meddelelse|välitetty\s+viesti|"
    r"przekazana\s+wiadomość|přeposlaná\s+zpráva|továbbított\s+üzenet|пересылаемое\s+сообщение|"
    r"пересланное\s+сообщение|переслане\s+повідомлення|προωθημένο\s+μήνυμα|iletilen\s+ileti|"
    r"转发的邮件|轉寄的郵件|転送されたメッセージ|전달된\s+메시지"
    r")\s*-*[\s*_]*$",
    re.IGNORECASE,
)

FORWARD_BANNERS = re.compile(
    r"^[\s>*]*(?:begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+nachricht|"
    r"début\s+du\s+message\s+réexpédié|début\s+du\s+message\s+transféré|inicio\s+del\s+mensaje\s+reenviado|"
    r"início\s+da\s+mensagem\s+reencaminhada|inizio\s+messaggio\s+inoltrato|"
    r"begin\s+doorgestuurd\s+bericht|vidarebefordrat\s+brev|начало\s+переадресованного\s+сообщения|"
    r"转发的邮件|以下是转发的邮件)\s*[:：]?\s*$",
    re.IGNORECASE,
)

# --- Outlook-style header blocks ("From: … Sent: … To: … Subject: …") -----------------------------

FROM_KEYS = (
    "from",
    "von",
    "de",
    "da",
    "van",
    "från",
    "fra",
    "lähettäjä",
    "od",
    "feladó",
    "от",
    "від",
    "από",
    "kimden",
    "gönderen",
    "发件人",
    "寄件者",
    "差出人",
    "보낸 사람",
    "보낸사람",
    "từ",
    "expéditeur",
    "afzender",
    "remitente",
)
OTHER_KEYS = (
    # sent / date
    "sent",
    "date",
    "gesendet",
    "datum",
    "envoyé",
    "date d'envoi",
    "enviado",
    "enviada",
    "fecha",
    "data",
    "inviato",
    "verzonden",
    "skickat",
    "sendt",
    "dato",
    "lähetetty",
    "päivämäärä",
    "wysłano",
    "data wysłania",
    "odesláno",
    "odoslané",
    "elküldve",
    "dátum",
    "trimis",
    "отправлено",
    "дата",
    "надіслано",
    "στάλθηκε",
    "ημερομηνία",
    "gönderildi",
    "tarih",
    "发送时间",
    "日期",
    "寄件日期",
    "送信日時",
    "日付",
    "보낸 날짜",
    "날짜",
    "đã gửi",
    "ngày",
    # to / cc
    "to",
    "an",
    "à",
    "a",
    "para",
    "aan",
    "till",
    "til",
    "vastaanottaja",
    "do",
    "címzett",
    "către",
    "кому",
    "προς",
    "kime",
    "alıcı",
    "收件人",
    "宛先",
    "받는 사람",
    "받는사람",
    "đến",
    "cc",
    "kopie",
    "copie",
    "kopia",
    "másolat",
    "копия",
    "抄送",
    "副本",
    "참조",
    # subject
    "subject",
    "betreff",
    "objet",
    "asunto",
    "assunto",
    "oggetto",
    "onderwerp",
    "ämne",
    "emne",
    "aihe",
    "temat",
    "předmět",
    "predmet",
    "tárgy",
    "subiect",
    "тема",
    "θέμα",
    "konu",
    "主题",
    "主旨",
    "件名",
    "제목",
    "chủ đề",
    # reply-to and friends seen in these blocks
    "reply-to",
    "antwort an",
    "répondre à",
    "responder a",
    "risposta",
    "rispondi a",
    "antwoord aan",
    "svara till",
)


def _keys_pattern(keys: tuple[str, ...]) -> str:
    ordered = sorted(keys, key=len, reverse=True)
    return "(?:" + "|".join(re.escape(k).replace(r"\ ", r"\s+") for k in ordered) + ")"


# "*From:* x" (Outlook plain text with bold marks), "From: x", full-width colons for CJK.
HEADER_FROM = re.compile(r"^[\s>]*\*?" + _keys_pattern(FROM_KEYS) + r"\s*\*?\s*[:：]\s*\*?\s*\S", re.IGNORECASE)
HEADER_OTHER = re.compile(r"^[\s>]*\*?" + _keys_pattern(OTHER_KEYS) + r"\s*\*?\s*[:：](?:\s|\*|$)", re.IGNORECASE)
HEADER_ANY = re.compile(
    r"^[\s>]*\*?" + _keys_pattern(FROM_KEYS + OTHER_KEYS) + r"\s*\*?\s*[:：](?:\s|\*|$)", re.IGNORECASE
)

# --- signatures ------------------------------------------------------------------------------------

# Lines mobile clients append ("Sent from my iPhone"), in the languages they ship with.
MOBILE_SIGNATURE = re.compile(
    r"^[\s(<\[*_]*(?:"
    r"sent\s+(?:from|via|with|using|by)\b.{0,80}|"
    r"sent\s+from\s+my\b.{0,80}|"
    r"get\s+(?:\[?outlook|\[?the\s+\w+\s+app)\b.{0,100}|"
    r"(?:\[?)?envoyé\s+(?:de|depuis|avec|à\s+partir)\b.{0,80}|"
    r"von\s+meinem\b.{0,80}gesendet.{0,40}|gesendet\s+(?:von|mit|vom)\b.{0,80}|"
    r"diese\s+nachricht\s+wurde\s+von\s+meinem\b.{0,100}gesendet\.?|"
    r"enviado\s+(?:desde|de|do|com|con|a\s+partir)\b.{0,80}|"
    r"inviato\s+da\b.{0,80}|"
    r"verzonden\s+(?:vanaf|met|van(?:af)?\s+mijn)\b.{0,80}|verstuurd\s+vanaf\b.{0,80}|"
    r"skickat\s+från\b.{0,80}|sendt\s+fra\b.{0,80}|lähetetty\s+\S+\b.{0,80}|"
    r"wysłane\s+z\b.{0,80}|odesláno\s+z\b.{0,80}|odoslané\s+z\b.{0,80}|"
    r"отправлено\s+(?:с|из)\b.{0,80}|надіслано\s+з\b.{0,80}|"
    r"iphone'?umdan\s+gönderildi|"
    r"从我的\s*\S+\s*发送|從我的\s*\S+\s*傳送|發自我的\s*\S+|来自我的\s*\S+|"
    r"\S+\s*から送信|"
    r"from\s+my\s+(?:iphone|ipad|android|samsung|mobile|phone|blackberry|galaxy)\b.{0,60}|"
    r"sent\s+(?:on|from)\s+(?:the\s+)?go\b.{0,40}|"
    r"(?:\w+\s+){0,3}from\s+mobile|"
    r"sent\s+by\s+galaxy|"
    r"typed\s+on\s+(?:a|my)\s+\w+.{0,40}|"
    r"\S+\s+from\s+mobile"
    r")[\s)>\]*_.]*$",
    re.IGNORECASE,
)
