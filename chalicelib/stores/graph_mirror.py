"""An in-process copy of the links a walk reads (`SQLiteGraphStore`'s mirror): pure, no I/O.

Every batch walks the neighbourhoods of its accounts, and in a dense stream those cover most of
the graph's identifier links, so reading them from SQLite each batch (a join per hop, a correlated
sum per member) re-reads nearly the whole non-merchant graph several times a batch. The mirror
holds those links once: per (account, relationship label) its targets and use counts, per
identifier its members, and which accounts have a vertex. The store fills it with one scan, keeps
it in step with its own writes, and drops it whenever it cannot vouch for it (another connection
committed, a batch rolled back, a write failed): `MirrorKeeper` says when it is trusted.

It answers `identifiers_of` with exactly what the SQL read answers: the same identifiers, members
in account order, the same uses and shares (`link_share(uses, total)`, total: the member's uses
of any identifier of that relationship label). Merchant links (`PAYS`) are not kept - no default
walk follows them and they are most of the graph's rows; a read through them goes to SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chalicelib.entities import LINKABLE, RELATIONSHIPS, Identifier
from chalicelib.linkage import link_share

#: the relationship labels the mirror keeps (every identifier two accounts can share)
MIRRORED_LABELS: frozenset[str] = frozenset(RELATIONSHIPS[name] for name in LINKABLE)

#: (account, label, target label, target key, use count), as graph_relationships holds them
LinkRow = tuple[str, str, str, str, int]
#: The most identifier links a store mirrors (~450 bytes each: ~45 MB at the limit; the 10-day
#: stream of 1,000 accounts has 10,000); a larger graph is read with SQL.
MIRROR_MAX_LINKS = 100_000


class MirrorKeeper:
    """When a store may trust its mirror. Exact because it is trusted only as of a `PRAGMA
    data_version` (which changes when another connection commits, never for the store's own
    commits) and follows the store's own writes: checked when a batch transaction starts (under
    the write lock nobody else can commit until the batch ends) and before any read outside one;
    dropped on a rollback or a failed write. Filled only inside a batch, so a read-only view never
    scans the graph for it; and not while other writers commit between the store's batches (two
    batches running), where a scan per batch would cost more than the reads it saves."""

    def __init__(self, max_links: int = MIRROR_MAX_LINKS) -> None:
        self.max_links = max_links
        self.current: LinkMirror | None = None
        self.fills = 0  # how often it was filled (for tests and benchmarks)
        self._batch_version: int | None = None  # data_version at the start of the last batch
        self._foreign_batches = 0  # consecutive batches that found another writer's commits before them

    def drop(self) -> None:
        self.current = None

    def batch_started(self, version: int) -> None:
        foreign = self._batch_version is not None and version != self._batch_version
        self._foreign_batches = self._foreign_batches + 1 if foreign else 0
        self._batch_version = version
        if self.current is not None and self.current.version != version:
            self.current = None

    def applied(self) -> None:
        """After the store's own writes went into the mirror: one grown past the limit is let go,
        and the graph read with SQL from then on (it only grows)."""
        if self.current is not None and len(self.current) > self.max_links:
            self.current, self.max_links = None, 0

    def outside_batch(self, version: int) -> LinkMirror | None:
        if self.current is not None and self.current.version != version:
            self.current = None
        return self.current

    def in_batch(self, scan: Callable[[int], tuple[list[str], list[LinkRow]]]) -> LinkMirror | None:
        """The mirror, filled by `scan(limit)` (accounts, at most limit + 1 links) if it must be."""
        if self.current is None and self._foreign_batches < 2 and self.max_links > 0:
            assert self._batch_version is not None
            accounts, rows = scan(self.max_links + 1)
            if len(rows) > self.max_links:
                self.max_links = 0  # the graph only grows: read it with SQL from now on
                return None
            self.current = LinkMirror(self._batch_version, accounts, rows)
            self.fills += 1
        return self.current


class LinkMirror:
    """The identifier links of one SQLite graph as of `version` (its `PRAGMA data_version` on the
    store's connection), plus what the store's own connection wrote since."""

    def __init__(self, version: int, accounts: Iterable[str], rows: Iterable[LinkRow]) -> None:
        self.version = version
        self.accounts: set[str] = set(accounts)  # keys of Account vertices
        #: (target label, target key, label) -> member account -> its use count; one dict per
        #: identifier, shared with `links`
        self.members: dict[tuple[str, str, str], dict[str, int]] = {}
        #: (account, label) -> (target label, target key) -> that identifier's members
        self.links: dict[tuple[str, str], dict[tuple[str, str], dict[str, int]]] = {}
        #: (account, label) -> the sum of its use counts over `links`
        self.totals: dict[tuple[str, str], int] = {}
        #: the relationship label of each target, and targets reached by more than one label
        #: (the SQL read merges those into one identifier: the store reads them from SQLite)
        self._label_of: dict[tuple[str, str], str] = {}
        self.mixed: set[tuple[str, str]] = set()
        self.size = 0  # links held
        for account, label, target_label, target_key, uses in rows:
            self._add(account, label, (target_label, target_key), uses)

    def __len__(self) -> int:
        """How many links it holds."""
        return self.size

    def _add(self, account: str, label: str, target: tuple[str, str], uses: int) -> None:
        mine = self.links.get((account, label))
        if mine is None:
            mine = self.links[(account, label)] = {}
        group = mine.get(target)
        if group is None:
            group = self.members.get((*target, label))
            if group is None:
                group = self.members[(*target, label)] = {}
                if self._label_of.setdefault(target, label) != label:
                    self.mixed.add(target)
            mine[target] = group
            self.size += 1
        group[account] = group.get(account, 0) + uses
        self.totals[(account, label)] = self.totals.get((account, label), 0) + uses

    def apply(self, vertices: Iterable[Sequence[str]], relationships: Iterable[tuple[Any, ...]]) -> None:
        """The store's own upserts, as it sent them: vertex rows (label, key, first seen) and
        relationship rows (account, label, target label, target key, first seen, last seen, uses
        added). A new relationship starts at the uses added, a known one grows by them - what the
        upsert does to `use_count`."""
        for label, key, *_ in vertices:
            if label == "Account":
                self.accounts.add(key)
        links, totals, add = self.links, self.totals, self._add
        for account, label, target_label, target_key, _first, _last, added in relationships:
            if label not in MIRRORED_LABELS:
                continue
            mine = links.get((account, label))
            group = mine.get((target_label, target_key)) if mine is not None else None
            if group is None:
                add(account, label, (target_label, target_key), added)
            elif added:
                group[account] += added
                totals[(account, label)] += added

    def identifiers_of(self, accounts: Iterable[str], labels: Sequence[str]) -> dict[str, list[Identifier]] | None:
        """`GraphStore.identifiers_of` for relationship `labels` (all of them mirrored); None when
        a target is reached by more than one relationship label (only a hand-made batch does
        that), which the SQL read answers its own way. An identifier several of the accounts
        share is one object, as the SQL read's."""
        if self.mixed:
            return None
        out: dict[str, list[Identifier]] = {}
        known, links, totals = self.accounts, self.links, self.totals
        shared: dict[tuple[str, str, str], Identifier] = {}
        labels = list(dict.fromkeys(labels))
        for account in sorted(set(accounts)):
            if account not in known:
                continue
            found: list[Identifier] = []
            for label in labels:
                mine = links.get((account, label))
                if not mine:
                    continue
                total = totals[(account, label)]
                for (target_label, target_key), group in mine.items():
                    if len(group) == 1:  # most identifiers: an account's own e-mail, phone, device, card
                        uses = group[account]
                        found.append(Identifier(target_label, target_key, (account,), (uses,),
                                                (link_share(uses, total),)))
                        continue
                    ident = shared.get((target_label, target_key, label))
                    if ident is None:
                        members = sorted(group)
                        ident = shared[(target_label, target_key, label)] = Identifier(
                            target_label, target_key, tuple(members), tuple([group[a] for a in members]),
                            tuple([link_share(group[a], totals[(a, label)]) for a in members]))
                    found.append(ident)
            out[account] = found
        return out
