"""Storage: the schema, engines and migrations, and the repository the pipeline talks to."""
