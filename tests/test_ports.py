"""colorize/ports.py: a real listening socket answers; a closed port says why."""

import socket

from colorize.ports import unanswered


def test_a_listening_port_answers_and_a_closed_one_says_why():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert unanswered("127.0.0.1", port, timeout=5) is None
    # the port just closed: nothing listens there now
    assert unanswered("127.0.0.1", port, timeout=5) == "Connection refused"
