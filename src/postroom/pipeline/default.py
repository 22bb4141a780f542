"""The default stage list: the one place that says in which order inbound mail is handled (DESIGN §1)."""

from __future__ import annotations

from postroom.pipeline.assign import assign
from postroom.pipeline.classify import classify
from postroom.pipeline.contact import contact
from postroom.pipeline.content import content
from postroom.pipeline.context import Stage
from postroom.pipeline.dedupe import dedupe
from postroom.pipeline.parse import parse
from postroom.pipeline.thread import thread

DEFAULT_STAGES: tuple[Stage, ...] = (parse, classify, dedupe, contact, thread, assign, content)
