"""A tiny SMTP server (no TLS) standing in for an email receiver's smarthost.

Just enough of RFC 5321 for Alertmanager's client: EHLO/HELO, AUTH PLAIN and LOGIN (credentials
are recorded so the test can check the secret file reached the wire), MAIL, RCPT, DATA, RSET,
NOOP, QUIT. One sink per email receiver, so the port says which receiver a message was sent to.
Each message is handed to the shared `Deliveries` as service `email` with the parsed message.
(The stdlib `smtpd` module is deprecated and aiosmtpd is not stdlib, hence this.)
"""

from __future__ import annotations

import base64
import email
import email.policy
import socketserver
import threading

from tests.e2e.http_sink import Deliveries, Delivery


def _address(arg: str) -> str:
    """`FROM:<a@b> BODY=8BITMIME` -> `a@b`."""
    path = arg.split(":", 1)[-1].strip()
    return path[1:path.index(">")] if path.startswith("<") and ">" in path else path.split(" ")[0]


class _Session(socketserver.StreamRequestHandler):
    server: "SmtpSink"

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def read_line(self) -> str:
        raw = self.rfile.readline(65536)
        if not raw:
            raise ConnectionError("client closed the connection")
        return raw.decode(errors="replace").rstrip("\r\n")

    def handle(self) -> None:
        try:
            self.converse()
        except ConnectionError:
            pass

    def converse(self) -> None:
        envelope: dict = {"mail_from": None, "rcpt_to": [], "auth": None}
        self.reply("220 e2e-smtp ESMTP ready")
        while True:
            line = self.read_line()
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-e2e-smtp")
                self.reply("250-8BITMIME")
                self.reply("250 AUTH PLAIN LOGIN")
            elif verb == "HELO":
                self.reply("250 e2e-smtp")
            elif verb == "AUTH":
                envelope["auth"] = self.authenticate(arg)
                self.reply("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                envelope["mail_from"] = _address(arg)
                envelope["rcpt_to"] = []
                self.reply("250 OK")
            elif verb == "RCPT":
                envelope["rcpt_to"].append(_address(arg))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                message = email.message_from_bytes(self.read_data(), policy=email.policy.default)
                self.server.deliveries.add(Delivery("email", self.server.receiver, message, dict(envelope)))
                self.reply("250 OK: queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")

    def authenticate(self, arg: str) -> tuple[str, str]:
        mechanism, _, initial = arg.partition(" ")
        if mechanism.upper() == "PLAIN":
            if not initial:
                self.reply("334 ")
                initial = self.read_line()
            _, user, password = base64.b64decode(initial).decode().split("\0", 2)
            return user, password
        # LOGIN: username and password prompted one at a time.
        user = base64.b64decode(initial).decode() if initial else self.prompt("Username:")
        return user, self.prompt("Password:")

    def prompt(self, text: str) -> str:
        self.reply("334 " + base64.b64encode(text.encode()).decode())
        return base64.b64decode(self.read_line()).decode()

    def read_data(self) -> bytes:
        lines = []
        while True:
            raw = self.rfile.readline(1 << 20)
            if raw in (b".\r\n", b".\n", b""):
                return b"".join(lines)
            lines.append(raw[1:] if raw.startswith(b"..") else raw)  # undo dot-stuffing


class SmtpSink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, receiver: str, deliveries: Deliveries) -> None:
        super().__init__(("127.0.0.1", 0), _Session)
        self.receiver, self.deliveries = receiver, deliveries
        self._thread = threading.Thread(target=self.serve_forever, name=f"smtp-sink-{receiver}", daemon=True)

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> "SmtpSink":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
