import asyncio

from inferplane.backoff import Backoff
from inferplane.control.runtime.workqueue import WorkQueue


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_backoff_doubles_and_caps() -> None:
    backoff = Backoff(base=0.1, cap=1.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_a_key_is_queued_once() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        for key in ("a", "b", "a", "a", "b"):
            queue.add(key)
        assert len(queue) == 2
        got = [await queue.get(), await queue.get()]
        return [k for k in got if k]

    assert run(scenario()) == ["a", "b"]


def test_a_key_added_while_processing_is_processed_again_after_done() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        key = await queue.get()
        queue.add("a")  # changed again while being reconciled
        assert len(queue) == 0, "never handed to two workers at once"
        assert key is not None
        queue.done(key)
        assert len(queue) == 1
        assert await queue.get() == "a"

    run(scenario())


def test_failures_back_off_per_key_and_forget_resets() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue(backoff=Backoff(base=10.0, cap=100.0))
        assert queue.add_rate_limited("bad") == 10.0
        assert queue.add_rate_limited("bad") == 20.0
        assert queue.add_rate_limited("other") == 10.0, "one key's failures never slow another"
        queue.forget("bad")
        assert queue.failures("bad") == 0
        assert len(queue) == 0, "a backed-off key waits for its timer"
        queue.shutdown()

    run(scenario())


def test_add_after_fires_and_shutdown_releases_waiters() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add_after("later", 0.01)
        assert await asyncio.wait_for(queue.get(), timeout=5) == "later"
        waiter = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        queue.shutdown()
        assert await asyncio.wait_for(waiter, timeout=5) is None

    run(scenario())
