"""Where items come from. Each source type turns fetched bytes into `ParsedFeed` values."""
