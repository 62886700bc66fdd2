"""CDEvents links and chains: which changes a deployment is linked to, and which
deployments a newly known event or link can reach (docs/metrics.md §4.2)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, literal, select

from dora_cloudevents.metrics.chunking import chunks
from dora_cloudevents.store.schema import artifact_changes, cdevent_links, cdevent_refs

# How many links a path may take from a deployment to a change (deployment → artifact →
# build → change is three); it also ends cycles, which links can form.
MAX_LINK_DEPTH = 16
CHANGE, ARTIFACT = "change:", "artifact:"


def linked_changes(connection: Connection, seqs: Iterable[int]) -> dict[int, set[str]]:
    """The changes each deployment reaches through its links and its chain: change events
    directly, artifact events through the changes their artifact was built from."""
    found: dict[int, set[str]] = {}
    artifacts: dict[str, set[int]] = {}
    for chunk in chunks(sorted(set(seqs))):
        for seq, ref in connection.execute(_reachable_refs(chunk)):
            if ref.startswith(CHANGE):
                found.setdefault(seq, set()).add(ref.removeprefix(CHANGE))
            elif ref.startswith(ARTIFACT):
                artifacts.setdefault(ref.removeprefix(ARTIFACT), set()).add(seq)
    for chunk in chunks(sorted(artifacts)):
        for key, change in connection.execute(
                select(artifact_changes.c.artifact_key, artifact_changes.c.change_key)
                .where(artifact_changes.c.artifact_key.in_(chunk))):
            for seq in artifacts[key]:
                found.setdefault(seq, set()).add(change)
    return found


def _reachable_refs(seqs: list[int]) -> Any:
    links = cdevent_links.c
    reach = (select(links.deployment_seq.label("seq"), links.target_id.label("id"),
                    literal(1).label("depth"))
             .where(links.deployment_seq.in_(seqs)).cte("reach", recursive=True))
    reach = reach.union(
        select(reach.c.seq, links.target_id, reach.c.depth + 1)
        .join(cdevent_links, links.event_id == reach.c.id)
        .where(reach.c.depth < MAX_LINK_DEPTH))
    return (select(reach.c.seq, cdevent_refs.c.ref).distinct()
            .join(cdevent_refs, cdevent_refs.c.event_id == reach.c.id))


def linking_deployments(connection: Connection, event_ids: Iterable[str],
                        artifact_keys: Iterable[str] = ()) -> set[int]:
    """The deployments whose links reach one of these events (or chains), or an event of
    one of these artifacts: what they ship may have changed."""
    ids = set(event_ids)
    for chunk in chunks(sorted(ARTIFACT + key for key in artifact_keys)):
        ids.update(connection.execute(select(cdevent_refs.c.event_id)
                                      .where(cdevent_refs.c.ref.in_(chunk))).scalars())
    found: set[int] = set()
    for chunk in chunks(sorted(ids)):
        found.update(connection.execute(_linking(chunk)).scalars())
    return found


def _linking(ids: list[str]) -> Any:
    links = cdevent_links.c
    back = (select(links.event_id.label("id"), links.deployment_seq.label("seq"),
                   literal(1).label("depth"))
            .where(links.target_id.in_(ids)).cte("back", recursive=True))
    back = back.union(
        select(links.event_id, links.deployment_seq, back.c.depth + 1)
        .join(cdevent_links, links.target_id == back.c.id)
        .where(back.c.depth < MAX_LINK_DEPTH))
    return select(back.c.seq).distinct().where(back.c.seq.is_not(None))
