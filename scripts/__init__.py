"""Maintenance scripts of the course (asset preparation, checks, student versions, the book)."""
