"""Notebook execution that cannot stall on a missed ZeroMQ wake-up.

The symptom (seen several times on 2026-11-23, in ``jupyter-book build`` and in papermill): a
chapter stops in the middle, its kernel idle, the executing process idle too. Diagnosis on a
stalled build (py-spy, then the client's sockets read through gdb): the kernel had run the cell
and published ``idle``; nbclient was awaiting ``shell_channel.get_msg(timeout=...)`` and the
``execute_reply`` was sitting in that socket all along (``EVENTS & POLLIN``). A ZeroMQ socket
signals readiness through an *edge-triggered* file descriptor; when something reads the
socket's state between the message's arrival and the event loop's next look (any
``getsockopt(EVENTS)`` on the same socket does), the edge is gone and ``zmq.asyncio``'s poll
waits until its timeout: the cell's whole timeout (900 s in the book build), or for ever without
one. ``tests/test_kernel_wakeup.py`` reproduces exactly this with two local sockets.

The remedy here: :meth:`jupyter_client.channels.AsyncZMQSocketChannel.get_msg` polls in slices
of at most :data:`SLICE_S` seconds until the caller's timeout. When a slice ends, pyzmq checks
the socket with a real ``zmq_poll`` (level-triggered), so a message that lost its wake-up is read
within one slice; nothing else about execution changes (same timeout, same messages).

Loaded by the book build as a Sphinx extension (``sphinx.local_extensions`` in ``_config.yml``:
myst-nb executes the chapters inside that process) and by the tests (``tests/conftest.py``: papermill
executes them inside pytest's). Not part of :mod:`softseg`: it concerns the tools that run the
book, not the science.
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

#: Longest a poll waits before looking at the socket itself (seconds).
SLICE_S = 1.0


async def get_msg_in_slices(self, timeout: float | None = None) -> dict[str, Any]:
    """``AsyncZMQSocketChannel.get_msg`` with its poll cut into slices of at most ``SLICE_S``.

    Same contract as the original: the next message, or :class:`queue.Empty` once ``timeout``
    seconds (``None``: no limit) have passed without one.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = SLICE_S if deadline is None else min(SLICE_S, max(0.0, deadline - time.monotonic()))
        if await self.socket.poll(int(wait * 1000)):
            return await self._recv()
        if deadline is not None and time.monotonic() >= deadline:
            raise Empty


def install() -> None:
    """Patch :class:`jupyter_client.channels.AsyncZMQSocketChannel` (idempotent)."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    if AsyncZMQSocketChannel.get_msg is not get_msg_in_slices:
        AsyncZMQSocketChannel.get_msg = get_msg_in_slices  # type: ignore[method-assign]


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: install the patch before myst-nb executes any notebook."""
    install()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
