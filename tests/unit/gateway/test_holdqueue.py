"""Scale from zero: requests wait for a ready endpoint, bounded, and demand is signalled."""

from __future__ import annotations

import asyncio

import pytest

from inferplane.gateway.holdqueue import HoldQueue, QueueFull
from inferplane.gateway.table import NsName, Table
from tests.unit.gateway.objects import endpoint, table_of

D: NsName = ("default", "d")
E: NsName = ("default", "e")
READY_D = table_of(endpoint("d-0", "d"))
NOT_READY_D = table_of(endpoint("d-0", "d", ready=False))


class Demand:
    def __init__(self) -> None:
        self.calls: list[tuple[NsName, int]] = []

    def __call__(self, deployment: NsName, waiting: int) -> None:
        self.calls.append((deployment, waiting))


async def waiting(queue: HoldQueue, *deployments: NsName) -> asyncio.Task[bool]:
    task = asyncio.create_task(queue.wait(deployments, timeout=60.0))
    await asyncio.sleep(0)
    return task


def test_a_table_with_a_ready_endpoint_releases_the_waiter() -> None:
    async def scenario() -> None:
        queue = HoldQueue(Demand())
        task = await waiting(queue, D)
        assert queue.held() == 1
        queue.release(NOT_READY_D)
        queue.release(Table())
        await asyncio.sleep(0)
        assert not task.done(), "no ready endpoint yet"
        queue.release(READY_D)
        assert await task is True
        assert queue.held() == 0

    asyncio.run(scenario())


def test_only_waiters_of_the_ready_deployment_are_released() -> None:
    async def scenario() -> None:
        queue = HoldQueue(Demand())
        on_d, on_e, on_either = (
            await waiting(queue, D),
            await waiting(queue, E),
            await waiting(queue, D, E),
        )
        queue.release(table_of(endpoint("e-0", "e")))
        assert await on_e is True and await on_either is True
        await asyncio.sleep(0)
        assert not on_d.done()
        assert queue.held() == 1, "the released waiter left its other deployment's list too"
        on_d.cancel()
        with pytest.raises(asyncio.CancelledError):
            await on_d
        assert queue.held() == 0, "a cancelled waiter is removed"

    asyncio.run(scenario())


def test_timeout_returns_false_and_forgets_the_waiter() -> None:
    async def scenario() -> None:
        queue = HoldQueue(Demand())
        assert await queue.wait([D], timeout=0.0) is False
        assert queue.held() == 0

    asyncio.run(scenario())


def test_a_full_queue_refuses_at_once() -> None:
    async def scenario() -> None:
        queue = HoldQueue(Demand(), capacity=2)
        first, second = await waiting(queue, D), await waiting(queue, E)
        with pytest.raises(QueueFull):
            await queue.wait([D], timeout=60.0)
        assert queue.held() == 2
        queue.release(table_of(endpoint("d-0", "d"), endpoint("e-0", "e")))
        assert (await first, await second) == (True, True)
        queue.release(READY_D)  # nobody waits: nothing to do

    asyncio.run(scenario())


def test_demand_is_signalled_once_per_resignal_period() -> None:
    async def scenario() -> None:
        demand = Demand()
        queue = HoldQueue(demand, resignal=3600.0)
        tasks = [await waiting(queue, D), await waiting(queue, D), await waiting(queue, E)]
        queue.release(NOT_READY_D)
        assert demand.calls == [(D, 1), (E, 1)], "once per deployment within the period"
        queue.release(table_of(endpoint("d-0", "d"), endpoint("e-0", "e")))
        assert [await t for t in tasks] == [True, True, True]

    asyncio.run(scenario())


def test_demand_is_signalled_again_after_the_period() -> None:
    async def scenario() -> None:
        demand = Demand()
        queue = HoldQueue(demand, resignal=0.0)
        tasks = [await waiting(queue, D), await waiting(queue, D)]
        assert demand.calls == [(D, 1), (D, 2)]
        queue.release(NOT_READY_D)
        assert demand.calls[-1] == (D, 2), "a new table re-signals while requests wait"
        queue.release(READY_D)
        assert [await t for t in tasks] == [True, True]
        count = len(demand.calls)
        queue.release(NOT_READY_D)
        assert len(demand.calls) == count, "no demand once nobody waits"

    asyncio.run(scenario())


def test_one_namespace_filling_the_queue_leaves_room_for_another() -> None:
    """The bound is per namespace: team-b's waiters neither refuse team-a's nor show up in
    what team-a is told (issue 11, tenant isolation)."""

    async def scenario() -> None:
        queue = HoldQueue(Demand(), capacity=2)
        theirs = [await waiting(queue, ("team-b", "d")), await waiting(queue, ("team-b", "e"))]
        ours = await waiting(queue, ("team-a", "d"))
        assert not ours.done(), "team-a waits, not refused for team-b's waiter"
        with pytest.raises(QueueFull) as full:
            await queue.wait([("team-b", "e")], timeout=60.0)
        assert str(full.value) == "2 requests of namespace 'team-b' already wait"
        queue.release(table_of(endpoint("d-0", "d", namespace="team-a")))
        assert await ours is True
        for task in theirs:
            task.cancel()

    asyncio.run(scenario())
