"""Iceberg tables and file folders: reads, writes, commits, refs and layouts."""
