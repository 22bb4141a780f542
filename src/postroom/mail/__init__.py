"""Pure email logic, no I/O: parse, quotes, signatures, HTML, classification, threading keys, compose."""
