"""The inbound pipeline: stored raw mail → conversations, in named stages composed by data (DESIGN §1)."""
