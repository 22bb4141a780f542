"""Test helpers shipped with Postroom: real mail servers on loopback and in-memory seams.

- :mod:`postroom.testing.certs` — a throwaway CA, a loopback server certificate, an untrusted one.
- :mod:`postroom.testing.dovecot` — :class:`DovecotServer`, a private Dovecot (IMAP, POP3; plain,
  STARTTLS, implicit TLS) started from a configuration template, with per-test users.
- :mod:`postroom.testing.smtp` — :class:`SmtpTestServer`, aiosmtpd in a thread that records mail and
  fails on request.
- :mod:`postroom.testing.memory` — :class:`MemorySink`, :class:`MemoryEventLog`, :class:`StatusRecorder`.
- :mod:`postroom.testing.mails` — :func:`make_mail`, fast valid test mails.

Nothing here is imported by Postroom itself; import the submodules directly.
"""
