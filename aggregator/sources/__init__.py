"""Where items come from. Each source type downloads what its server offers (one conditional
GET for a feed; several paged requests for an API) and turns the bytes into a `ParsedFeed`.

Downloading and parsing are separate so that parsing stays pure and an unchanged download (the
same bytes as last time) is never parsed again, whatever the source.

Each type is one module and one line in `registry.py`. `base.py` says what a type is, `api.py`
helps the paged JSON APIs, and `entries.py` turns every format's items into clean `Entry`s.
"""
