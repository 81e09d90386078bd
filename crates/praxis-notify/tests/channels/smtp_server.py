"""A real SMTP server for the channel tests (aiosmtpd), run as a child process.

Binds 127.0.0.1 on a free port, prints `READY <port>` on stdout, then one JSON line per
message it accepts: the envelope, the raw message and what Python's own MIME parser makes of
it (headers, text and html parts), so the Rust tests check the message as a mail client would
read it, plus whether it came over TLS and who authenticated. Recipients whose local part
starts with `reject` are refused with a 550 (permanent), those starting with `tempfail` with a
451 (transient). Stops when stdin closes or on SIGTERM.

Options (all optional; without them: plain text, no AUTH):
  --tls none|starttls|implicit   starttls: offers STARTTLS and refuses mail before it
                                 (require_starttls); implicit: TLS from the first byte
  --cert FILE --key FILE         the server's certificate chain and key (PEM), for --tls
  --auth USER:PASSWORD           requires AUTH (PLAIN or LOGIN) with these credentials
  --auth-mechanisms PLAIN,LOGIN  the mechanisms offered (default both)
"""

import argparse
import asyncio
import email
import email.policy
import json
import signal
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


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
        transport = server.transport
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "raw": raw.decode("utf-8", "replace"),
            "headers": {k.lower(): str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "defects": [str(d) for d in msg.defects],
            "text": plain.get_content() if plain is not None else None,
            "html": html.get_content() if html is not None else None,
            "tls": transport is not None and transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
            "auth_mechanism": getattr(session, "auth_mechanism", None),
        }
        # Written and flushed before the 250 reply: once the client has its reply, the line
        # is in the pipe.
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()
        return "250 2.0.0 Message accepted for delivery"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        if ok:
            session.auth_mechanism = mechanism
        # handled=False: aiosmtpd answers a failure itself (535 5.7.8).
        return AuthResult(success=ok, handled=False)

    return check


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth")
    parser.add_argument("--auth-mechanisms", default="PLAIN,LOGIN")
    args = parser.parse_args()

    kwargs = {}
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        if args.tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            kwargs.update(ssl_context=context)
    if args.auth:
        user, password = args.auth.split(":", 1)
        offered = {m.strip().upper() for m in args.auth_mechanisms.split(",")}
        kwargs.update(
            authenticator=authenticator(user, password),
            auth_required=True,
            # Implicit TLS is TLS too (aiosmtpd only counts STARTTLS as such).
            auth_require_tls=args.tls == "starttls",
            auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m not in offered],
        )

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
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
