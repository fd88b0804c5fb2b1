"""The customer domain: models, database, register service, import and export.

Nothing here imports Textual or Rich (tests/test_architecture.py enforces it).
"""
