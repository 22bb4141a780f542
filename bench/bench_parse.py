"""Mails understood per CPU-second: Postroom's ``parse_message`` beside bare ``email.message_from_bytes``.

Usage::

    python3 ../shared/bench/make_corpus.py generate --n 5000 --seed 20250101 --out /tmp/postroom-corpus
    .venv/bin/python bench/bench_parse.py [--corpus /tmp/postroom-corpus] [--rounds 3] [--profile]

Both loops parse the same bytes, already in memory, in the same process; each is timed with
``time.process_time`` (CPU seconds of this process) and the best of ``--rounds`` runs is kept, so that the
ratio compares the work and not the noise. The bare loop only builds the standard library's message tree
(``policy.default``); the Postroom loop does everything ``postroom parse`` prints: headers, addresses,
dates, bodies and charsets, sanitised HTML, reply/signature/quote split, attachments with SHA-256,
classification and threading keys.
"""

from __future__ import annotations

import argparse
import email
import subprocess
import sys
import time
from collections.abc import Callable
from email import policy
from pathlib import Path

from postroom.mail.parse import ParseOptions, parse_message

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_CORPUS = Path("/tmp/postroom-corpus")


def load(directory: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(directory.rglob("*.eml"))]


def ensure_generated(directory: Path) -> None:
    if directory.is_dir() and any(directory.glob("*.eml")):
        return
    script = SHARED / "bench" / "make_corpus.py"
    print(f"generating the corpus into {directory} with {script}", file=sys.stderr)
    subprocess.run(
        [sys.executable, str(script), "generate", "--n", "5000", "--seed", "20250101", "--out", str(directory)],
        check=True,
    )


def best_of(rounds: int, work: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best


def measure(name: str, mails: list[bytes], rounds: int) -> tuple[float, float]:
    options = ParseOptions(own_addresses=frozenset({"support@example.test"}))

    def bare() -> None:
        for raw in mails:
            email.message_from_bytes(raw, policy=policy.default)

    def ours() -> None:
        for raw in mails:
            parse_message(raw, options)

    ours()  # warm caches (regexes, codecs) before timing either side
    bare_s = best_of(rounds, bare)
    ours_s = best_of(rounds, ours)
    n = len(mails)
    size = sum(map(len, mails)) / 1e6
    print(f"{name}: {n} mails, {size:.1f} MB")
    print(f"  email.message_from_bytes(policy=default): {n / bare_s:8.0f} mails/CPU-s ({bare_s:.2f} s)")
    print(f"  postroom parse_message (everything):      {n / ours_s:8.0f} mails/CPU-s ({ours_s:.2f} s)")
    print(f"  ratio postroom / stdlib:                  {bare_s / ours_s:8.2f}")
    return n / bare_s, n / ours_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile the Postroom loop with cProfile")
    args = parser.parse_args()
    ensure_generated(args.corpus)
    generated = load(args.corpus)
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for raw in generated:
            parse_message(raw)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        return
    measure("generated corpus (seed 20250101)", generated, args.rounds)
    corpus = SHARED / "corpus" / "imap_tools_messages" / "messages"
    if corpus.is_dir():
        measure("imap_tools_messages corpus", load(corpus), max(args.rounds, 5))


if __name__ == "__main__":
    main()
