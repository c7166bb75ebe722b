"""``book/_ext/kernel_wakeup.py``: a shell reply whose ZeroMQ wake-up was lost is still read.

The situation is built with two local sockets: the client awaits ``get_msg``, the reply arrives
while the event loop is not looking, and a ``getsockopt(EVENTS)`` on the client's socket consumes
the edge-triggered wake-up — what stalled the book's notebooks. Without the patch the await lasts
the whole timeout (for ever without one); with it, at most about one slice.
"""

from __future__ import annotations

import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

from conftest import ROOT

sys.path.insert(0, str(ROOT / "book" / "_ext"))
import kernel_wakeup  # noqa: E402

#: The caller's timeout in these tests: far longer than a slice, so a return well before it can
#: only come from the slicing.
TIMEOUT_S = 30.0


async def _reply_after_lost_wakeup(lose_wakeup: bool) -> tuple[float, str]:
    ctx = zmq.asyncio.Context()
    client = ctx.socket(zmq.DEALER)
    port = client.bind_to_random_port("tcp://127.0.0.1")
    kernel = zmq.Context().socket(zmq.ROUTER)
    kernel.connect(f"tcp://127.0.0.1:{port}")
    try:
        session = Session()
        channel = AsyncZMQSocketChannel(client, session)
        await client.send(b"hello")  # the kernel side learns the client's identity
        ident, _ = kernel.recv_multipart()
        pending = asyncio.ensure_future(channel.get_msg(timeout=TIMEOUT_S))
        await asyncio.sleep(0.1)  # the poll is registered; the loop waits on the socket's FD
        session.send(kernel, "execute_reply", {"status": "ok"}, ident=ident)
        time.sleep(0.2)  # the reply arrives while the loop is not looking...
        if lose_wakeup:  # ...and reading the socket's state consumes the edge
            zmq.Socket.shadow(client.underlying).get(zmq.EVENTS)
        start = time.monotonic()
        msg = await pending
        return time.monotonic() - start, msg["msg_type"]
    finally:
        client.close(linger=0)
        kernel.close(linger=0)


def _run(coroutine):
    """Run ``coroutine`` to its end in a fresh event loop on its own thread: the test process may
    already have an event loop running in its main thread (papermill's, from the notebook tests),
    where ``asyncio.run`` refuses to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def patched(monkeypatch):
    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", AsyncZMQSocketChannel.get_msg)  # restored after
    kernel_wakeup.install()
    kernel_wakeup.install()  # idempotent
    assert AsyncZMQSocketChannel.get_msg is kernel_wakeup.get_msg_in_slices


def test_reply_with_a_lost_wakeup_is_read_within_about_one_slice(patched):
    waited, kind = _run(_reply_after_lost_wakeup(lose_wakeup=True))
    assert kind == "execute_reply"
    assert waited < 5 * kernel_wakeup.SLICE_S < TIMEOUT_S, waited


def test_reply_with_its_wakeup_is_read_at_once(patched):
    waited, kind = _run(_reply_after_lost_wakeup(lose_wakeup=False))
    assert kind == "execute_reply" and waited < kernel_wakeup.SLICE_S


def test_no_message_raises_empty_at_the_timeout(patched):
    async def wait_for_nothing(timeout: float) -> float:
        ctx = zmq.asyncio.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.bind_to_random_port("tcp://127.0.0.1")
        try:
            channel = AsyncZMQSocketChannel(sock, Session())
            start = time.monotonic()
            with pytest.raises(Empty):
                await channel.get_msg(timeout=timeout)
            return time.monotonic() - start
        finally:
            sock.close(linger=0)

    assert 2.5 <= _run(wait_for_nothing(2.5)) < 2.5 + kernel_wakeup.SLICE_S
    assert _run(wait_for_nothing(0.0)) < kernel_wakeup.SLICE_S  # a zero timeout polls once


def test_the_book_build_and_the_tests_load_the_patch():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["local_extensions"] == {"kernel_wakeup": "book/_ext"}
    # conftest installed it for the papermill runs of this session
    assert AsyncZMQSocketChannel.get_msg is kernel_wakeup.get_msg_in_slices
