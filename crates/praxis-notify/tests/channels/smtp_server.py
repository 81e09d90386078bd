"""A real SMTP server for the channel tests (aiosmtpd), run as a child process.

Binds 127.0.0.1 on a free port, prints `READY <port>` on stdout, then one JSON line per
message it accepts: the envelope, the raw message and what Python's own MIME parser makes of
it (headers, text and html parts), so the Rust tests check the message as a mail client would
read it. Recipients whose local part starts with `reject` are refused with a 550 (permanent),
those starting with `tempfail` with a 451 (transient). Stops when stdin closes or on SIGTERM.
"""

import asyncio
import email
import email.policy
import json
import signal
import socket
import sys

from aiosmtpd.controller import Controller


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 no such user here"
        if local.startswith("tempfail"):
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "raw": raw.decode("utf-8", "replace"),
            "headers": {k.lower(): str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "defects": [str(d) for d in msg.defects],
            "text": plain.get_content() if plain is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        # Written and flushed before the 250 reply: once the client has its reply, the line
        # is in the pipe.
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()
        return "250 2.0.0 Message accepted for delivery"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        # Exit when the test process goes away (stdin closes).
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
