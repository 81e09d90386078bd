"""An outside WebSocket client for the chat suite, on the `websockets` package (PyPI).

Usage: ws_client.py URL TOKEN CONVERSATION AFTER

Subscribes to CONVERSATION with `after` = AFTER, reads until `subscribed`, sends one message
(client id `py-1`), reads the frame that answers it, sends a frame that is not JSON, reads the
error, and prints every frame it received as one JSON list on stdout.
"""

import asyncio
import json
import sys

import websockets

DEADLINE = 30


def connect(url, headers):
    try:  # websockets >= 13
        from websockets.asyncio.client import connect as new_connect

        return new_connect(url, additional_headers=headers)
    except ImportError:  # Debian's older package
        return websockets.connect(url, extra_headers=headers)


async def main():
    url, token, conversation, after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    frames = []

    async def receive(ws):
        frame = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
        frames.append(frame)
        return frame

    async with connect(url, {"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(json.dumps({"type": "subscribe", "conversation_id": conversation, "after": after}))
        while (await receive(ws))["type"] != "subscribed":
            pass
        await ws.send(json.dumps(
            {"type": "send", "conversation_id": conversation, "client_id": "py-1", "body": "from python"}
        ))
        await receive(ws)
        await ws.send("{not json")
        await receive(ws)
    print(json.dumps(frames))


asyncio.run(main())
