"""The access rules of shares against a real smbd on the host, configured by nasbox."""
import socket

import pytest

from nasbox.health import smb_answers
from tests.support.access_matrix import AccessMatrix, Matrix

pytestmark = pytest.mark.host


class TestHostSmbd(AccessMatrix):
    pass


def test_health_probe_reads_the_dialect_of_a_real_smbd(matrix: Matrix) -> None:
    ok, detail = smb_answers(matrix.server.host, matrix.server.port)
    assert ok and detail.startswith("SMB 3"), detail


def test_health_probe_fails_on_a_closed_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening
        ok, detail = smb_answers("127.0.0.1", port, timeout=2)
    assert not ok and "no answer" in detail
