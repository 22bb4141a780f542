"""discourse/email_reply_trimmer's corpus: the new text of a plain-text body, without signature or history."""

from __future__ import annotations

import json

from postroom.mail.quotes import split_reply

from .helpers import corpus_dir

BAR = 58  # of 64: the quality bar (off-the-shelf Python libraries reach 18-28)


def test_reply_text_matches_trimmed_text() -> None:
    base = corpus_dir("discourse_email_reply_trimmer")
    cases = [json.loads(line) for line in (base / "manifest.jsonl").read_text().splitlines() if line.strip()]
    passed: list[str] = []
    failed: list[str] = []
    for case in cases:
        # As upstream compares: strip() the input and both results, then exact equality.
        body = (base / case["input"]).read_text(encoding="utf-8").strip()
        parts = split_reply(body)
        expected = case["expected"]["reply_text"]["text"].strip()
        (passed if parts.reply_text.strip() == expected else failed).append(case["id"])
        # Nothing is thrown away: every non-blank line is in one of the three parts.
        kept = "\n".join((parts.reply_text, parts.signature, parts.quoted_text))
        for line in body.replace("\r\n", "\n").split("\n"):
            assert line.strip() in kept, (case["id"], line)
    print(f"\ndiscourse_email_reply_trimmer reply_text: {len(passed)}/{len(cases)}; failed: {failed}")
    assert len(cases) == 64
    assert len(passed) >= BAR, failed


def test_elided_text_lands_in_signature_or_history() -> None:
    base = corpus_dir("discourse_email_reply_trimmer")
    cases = [json.loads(line) for line in (base / "manifest.jsonl").read_text().splitlines() if line.strip()]
    for case in cases:
        elided = case["expected"]["elided_text"]["text"].strip()
        if not elided:
            continue
        body = (base / case["input"]).read_text(encoding="utf-8").strip()
        parts = split_reply(body)
        elsewhere = f"{parts.signature}\n{parts.quoted_text}"
        # Upstream joins attributions that wrap over lines; compare the start of the first elided line.
        first_line = elided.split("\n", 1)[0].strip()[:25]
        if parts.reply_text.strip() == case["expected"]["reply_text"]["text"].strip():
            assert first_line in elsewhere, case["id"]
