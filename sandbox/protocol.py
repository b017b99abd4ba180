"""Length-prefixed JSON messages over a Unix socket, with file descriptors passed alongside.

JSON, not pickle, in both directions: the caller must never unpickle
anything a compromised worker could have written. Tensors never travel here;
they live in memfd-backed shared memory whose descriptors ride along.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import time
from collections.abc import Sequence
from typing import Any

# Bumped whenever caller and worker would misread each other. A caller that
# imported the sandbox before its files changed on disk starts workers from
# the new files; the handshake turns that into a clear error.
PROTOCOL_VERSION = 3  # 3: requests carry the compiled module (`compiled`), not the source

_HEADER = struct.Struct("!I")
MAX_MESSAGE_BYTES = 16 << 20
MAX_FDS = 8


def encode_bytes(data: bytes) -> str:
    """Bytes as a JSON string (base64)."""
    return base64.b64encode(data).decode("ascii")


def decode_bytes(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


class ProtocolError(Exception):
    """The peer sent something that is not a well-formed message."""


def send(sock: socket.socket, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
    payload = json.dumps(message, separators=(",", ":")).encode()
    data = _HEADER.pack(len(payload)) + payload
    sock.settimeout(None)
    if fds:
        sent = socket.send_fds(sock, [data], list(fds))
        data = data[sent:]
    if data:
        sock.sendall(data)


def _recv_exact(sock: socket.socket, size: int, deadline: float | None, fds: list[int]) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        if deadline is None:
            sock.settimeout(None)
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply before the deadline")
            sock.settimeout(remaining)
        data, new_fds, _flags, _addr = socket.recv_fds(sock, size - len(buf), MAX_FDS)
        fds.extend(new_fds)
        if not data:
            raise EOFError("peer closed the connection")
        buf += data
    return bytes(buf)


def recv(sock: socket.socket, deadline: float | None = None) -> tuple[dict[str, Any], list[int]]:
    """Next message and the descriptors that came with it; TimeoutError past `deadline` (monotonic)."""
    fds: list[int] = []
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size, deadline, fds))
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {size} bytes exceeds {MAX_MESSAGE_BYTES}")
    payload = _recv_exact(sock, size, deadline, fds)
    try:
        message = json.loads(payload)
    except ValueError as exc:
        raise ProtocolError(f"malformed message: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    return message, fds
