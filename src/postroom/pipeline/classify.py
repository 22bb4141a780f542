"""Stage ``classify``: decide what automated mail may do. Our own mail coming back is not a new message."""

from __future__ import annotations

from postroom.mail.model import Kind
from postroom.pipeline.context import Context, stage
from postroom.store.models import RawStatus


@stage("classify")
def classify(ctx: Context) -> None:
    classification = ctx.require_parsed().classification
    if classification.kind is Kind.LOOP:
        # Answering our own mail would start a mail loop (RFC 3834 §2); keep the bytes, make no message.
        ctx.stop(RawStatus.IGNORED, "our own outgoing mail: " + "; ".join(classification.reasons))
