"""pydantic models: the single source of every row, Parquet schema and judge JSON schema."""
