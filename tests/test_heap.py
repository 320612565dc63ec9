"""The frozen heap: what is alive at set-up is left alone by the collector, and freezing again
(as a reload does) frees what was let go since, so a service reloaded for months does not keep
every replaced app."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from aggregator import heap


class _Node:
    """An object in a reference cycle: only the collector can free it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_an_object_alive_at_freezing_is_not_collected_until_the_heap_is_frozen_again() -> None:
    node = _Node()
    alive = weakref.ref(node)
    heap.freeze()
    del node
    gc.collect()
    assert alive() is not None, "a frozen cycle is out of the collector's walks"

    heap.freeze()

    assert alive() is None, "freezing again collects what was let go since"


def test_freezing_collects_garbage_first_so_none_is_kept_forever() -> None:
    node = _Node()
    garbage = weakref.ref(node)
    del node

    heap.freeze()

    assert garbage() is None
    assert gc.get_freeze_count() > 0
