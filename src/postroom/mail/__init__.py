"""Pure email logic, no I/O: parse, quotes, signatures, HTML, classification, threading keys, compose.

Entry points (the contract with the rest of Postroom is in :mod:`postroom.mail.model`):

- :func:`postroom.mail.parse.parse_message` with :class:`postroom.mail.parse.ParseOptions`
- :func:`postroom.mail.quotes.split_reply` (plain-text body → reply, signature, quoted history)
- :func:`postroom.mail.compose.compose`, :func:`~postroom.mail.compose.reply_subject`
- :mod:`postroom.mail.threading`: reply tokens, Message-IDs, subjects, Outlook Thread-Index
- :mod:`postroom.mail.addresses`: ``parse_address``, ``parse_address_list``, ``normalize_email``

Inside: ``mime`` (the MIME tree from bytes), ``headers`` (fields, RFC 2047/2231, dates), ``charsets``,
``transfer`` (base64, quoted-printable, uuencode), ``bodies`` (which parts are text, HTML, files),
``attachments`` (names made safe), ``html`` (nh3, inscriptis), ``html_quotes`` (clients' HTML quote marks),
``phrases`` (the words of many languages), ``signatures``, ``classify``.
"""
