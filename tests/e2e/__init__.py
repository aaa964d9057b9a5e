"""Local stand-ins for the end-to-end alerting test (tests/test_alerting_e2e.py).

- `procs`: start the real prometheus/alertmanager binaries on loopback and stop them for sure.
- `http_sink`: one HTTP server standing in for Slack, PagerDuty (Events v2) and webhook receivers.
- `smtp_sink`: a tiny SMTP server standing in for the email receiver's smarthost.
- `exporter`: serves metrics that make the seed's alerts fire.
- `localize`: maps the rendered container configs onto a temp dir, local ports and a faster clock.

Everything binds 127.0.0.1 only and runs with bounded waits.
"""
