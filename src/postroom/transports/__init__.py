"""One module per way mail goes out (SMTP, later SendGrid). Transports know protocols, not conversations."""
