import socket

import pytest

from tests.conftest import NetworkAccessError


def test_a_request_leaving_the_machine_fails():
    # GIVEN a socket to a public address  WHEN connecting  THEN the guard refuses before any packet
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(NetworkAccessError):
        sock.connect(("203.0.113.10", 443))


def test_loopback_stays_allowed():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
