"""`make demo` with a port already taken says which and what holds it, and stops at once."""
from __future__ import annotations

import socket

from local import demo


def test_a_taken_port_is_named_and_the_demo_exits_nonzero(capsys):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        status = demo.main(["--aws-port", str(port), "--api-port", "0", "--x-port", "0", "--graph-port", "0"])
    err = capsys.readouterr().err
    assert status == 2
    assert f"port {port} (embedded AWS) is in use" in err
    assert "--aws-port 0" in err  # how to get past it


def test_free_ports_raise_no_problem():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert demo.busy_ports({"agent API": port, "any": 0}) == []
