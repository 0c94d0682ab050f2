"""Errors of the stores package; all share `StoreError`. Vendor errors become these at the boundary."""

from __future__ import annotations


class StoreError(Exception):
    """A store could not do what was asked."""


class TransientStoreError(StoreError):
    """Worth retrying: the store is busy, throttled or briefly unreachable.

    The pipeline answers it with `batchItemFailures`, so Lambda redelivers the unfinished records.
    """
