"""A network namespace joined to this host by a veth pair: a plane behind NAT on one machine.

Inside, 127.0.0.1 is the namespace's own loopback, which nothing on the host can reach; the
namespace reaches the host at `host_address` (and the host it at `plane_address`, though
nothing in the tests listens there). Processes are started inside with `ip netns exec`.
Needs root (CAP_NET_ADMIN) and iproute2; `available()` says why not when it cannot run.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Netns:
    name: str
    host_address: str
    """The host's end of the veth pair, as the namespace reaches it."""
    plane_address: str

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


def available() -> str | None:
    """None when a namespace can be made here, else why not."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"ipprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextmanager
def plane_namespace() -> Iterator[Netns]:
    """A fresh namespace with its loopback up and a veth link to the host; removed after."""
    tag = f"{os.getpid() % 10000}{random.randrange(100)}"
    subnet = random.randrange(1, 250)
    name, host_link, plane_link = f"ipnat{tag}", f"ipn{tag}h", f"ipn{tag}p"
    host_address, plane_address = f"10.249.{subnet}.1", f"10.249.{subnet}.2"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", host_link, "type", "veth", "peer", "name", plane_link)
        _ip("link", "set", plane_link, "netns", name)
        _ip("addr", "add", f"{host_address}/30", "dev", host_link)
        _ip("link", "set", host_link, "up")
        inside = ["netns", "exec", name, "ip"]
        _ip(*inside, "addr", "add", f"{plane_address}/30", "dev", plane_link)
        _ip(*inside, "link", "set", plane_link, "up")
        _ip(*inside, "link", "set", "lo", "up")
        yield Netns(name, host_address, plane_address)
    finally:
        subprocess.run(["ip", "link", "del", host_link], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
