"""A WebSocket echo server (the `websockets` package) for the gateway's pass-through test.

Prints `listening PORT` once bound; answers every text message with `<id>:<message>`.
Usage: python3 ws_echo.py ID
"""

import asyncio
import sys

from websockets.asyncio.server import serve

ID = sys.argv[1]


async def echo(ws):
    async for message in ws:
        await ws.send(f"{ID}:{message}")


async def main():
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        await asyncio.Future()


asyncio.run(main())
