"""The fetch pipeline: schedule -> fetch -> parse -> normalise -> match -> dedupe -> store.

- `prepare.py`: before a pass, items stored before stories existed are grouped and stored items
  re-matched when the rules changed;
- `fetch_pass.py`: one pass over the feeds that are due, concurrently; a failing feed is a
  result, not a crash;
- `parse_pool.py`: worker processes that parse and analyse while the store thread writes;
- `store_queue.py`: the store thread's queue, parsed feeds written several to a transaction;
- `check.py`: `feeds check`, a fetch and parse that stores nothing.

Nothing is imported here, so a parse worker loads only what parsing needs.
"""
