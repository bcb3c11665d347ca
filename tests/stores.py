"""zarr stores for tests: wrappers that count reads, misreport listing or
answer slowly."""
import asyncio

from zarr.storage import WrapperStore


class CountingStore(WrapperStore):
    """Records (key, byte range, bytes returned) of every read."""

    def __init__(self, store):
        super().__init__(store)
        self.reads = []

    async def get(self, key, prototype=None, byte_range=None):
        buf = await self._store.get(key, prototype, byte_range)
        self.reads.append((key, byte_range, 0 if buf is None else len(buf)))
        return buf

    async def getsize(self, key):   # (WrapperStore would read the object to size it)
        return await self._store.getsize(key)

    def chunk_reads(self):
        return [r for r in self.reads if not r[0].endswith((".json", ".zarray", ".zattrs",
                                                             ".zgroup"))]


class Unlisted(WrapperStore):
    """A store that says it lists its keys and lists none (as plain HTTP)."""

    async def list_prefix(self, prefix):
        return
        yield

    async def getsize(self, key):
        return await self._store.getsize(key)


class Slow(WrapperStore):
    """Answers reads of keys that `slow(key)` picks `delay` seconds late."""

    def __init__(self, store, slow, delay=0.2):
        super().__init__(store)
        self.slow, self.delay = slow, delay

    async def get(self, key, prototype=None, byte_range=None):
        if self.slow(key):
            await asyncio.sleep(self.delay)
        return await self._store.get(key, prototype, byte_range)

    async def getsize(self, key):
        return await self._store.getsize(key)
