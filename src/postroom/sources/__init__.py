"""One module per way mail comes in. Sources know protocols, not conversations: they fetch bytes, hand
them to a :class:`postroom.sources.base.RawSink` that commits them, and only then acknowledge."""
