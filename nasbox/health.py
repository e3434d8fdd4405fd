"""The container's health: smbd answers an SMB2 NEGOTIATE on its port."""

from __future__ import annotations

import socket
import struct
import uuid

SMB2_DIALECTS = {0x0202: "2.0.2", 0x0210: "2.1", 0x0300: "3.0", 0x0302: "3.0.2"}


def negotiate_request() -> bytes:
    header = struct.pack(
        "<4sHHIHHIIQIIQ16s",
        b"\xfeSMB",
        64,
        0,
        0,  # protocol, structure size, credit charge, status
        0,
        1,
        0,
        0,  # command NEGOTIATE, credits requested, flags, next command
        0,
        0,
        0,
        0,
        b"\0" * 16,  # message id, reserved, tree id, session id, signature
    )
    body = struct.pack("<HHHHI16sQ", 36, len(SMB2_DIALECTS), 1, 0, 0, uuid.uuid4().bytes, 0)
    body += struct.pack(f"<{len(SMB2_DIALECTS)}H", *SMB2_DIALECTS.keys())
    message = header + body
    return struct.pack(">I", len(message)) + message  # NetBIOS session message


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        data += chunk
    return data


def smb_answers(host: str = "127.0.0.1", port: int = 445, timeout: float = 5.0) -> tuple[bool, str]:
    """(True, dialect) when an SMB2 server answers NEGOTIATE with success, else (False, why)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(negotiate_request())
            (length,) = struct.unpack(">I", _read_exactly(sock, 4))
            reply = _read_exactly(sock, length)
    except OSError as e:
        return False, f"no answer on {host}:{port}: {e}"
    if reply[:4] != b"\xfeSMB":
        return False, "the answer is not SMB2"
    (status,) = struct.unpack_from("<I", reply, 8)
    if status != 0:
        return False, f"NEGOTIATE failed with status 0x{status:08x}"
    (dialect,) = struct.unpack_from("<H", reply, 64 + 4)
    return True, f"SMB {SMB2_DIALECTS.get(dialect, hex(dialect))}"
