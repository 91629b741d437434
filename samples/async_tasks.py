"""async/await: asyncio.run() drives a coroutine that awaits helpers, gathers two tasks, and consumes an
async generator with `async for`. Only asyncio.sleep(0) is used, so the schedule is deterministic.
"""
import asyncio


async def fetch(name, rounds):
    total = 0
    for i in range(rounds):
        await asyncio.sleep(0)
        total += i
    return f"{name}:{total}"


async def ticker(limit):
    for tick in range(limit):
        await asyncio.sleep(0)
        yield tick * 10


async def main():
    first = await fetch("solo", 2)
    pair = await asyncio.gather(fetch("a", 1), fetch("b", 2))
    ticks = [tick async for tick in ticker(3)]
    return first, pair, ticks


print(asyncio.run(main()))
