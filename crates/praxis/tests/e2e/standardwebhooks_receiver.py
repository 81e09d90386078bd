"""A webhook receiver that verifies each delivery with the `standardwebhooks` package (the
Standard Webhooks reference library, from PyPI), given the secret exactly as text.

    python3 standardwebhooks_receiver.py whsec_...

Prints `listening <port>`, then one line per POST: `verified <webhook-id>` (answered 204) or
`rejected <reason>` (answered 401).
"""
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

WEBHOOK = Webhook(sys.argv[1])


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        try:
            WEBHOOK.verify(body, headers)
        except WebhookVerificationError as e:
            print(f"rejected {e}", flush=True)
            self.send_response(401)
        else:
            print(f"verified {headers.get('webhook-id', headers.get('Webhook-Id'))}", flush=True)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
