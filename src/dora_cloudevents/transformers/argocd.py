"""Argo CD deployments, sent as CloudEvents by an Argo CD Notifications webhook template."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from dora_cloudevents.cdevents.build import new_cdevent
from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.transformers.base import (
    Transformer,
    TransformError,
    dig,
    dig_list,
    event_source,
    first_time,
    image_purl,
    json_data,
)

NAME = "argocd"
DEPLOYED = "io.argoproj.argocd.app.deployed"
# Reserved for an optional health-degraded template: incident detection from Argo CD health
# is out of scope (a Degraded app is not necessarily an incident), so it yields nothing.
DEGRADED = "io.argoproj.argocd.app.degraded"

# Argo CD has no CloudEvents of its own: these argocd-notifications-cm entries make its
# notifications controller POST one (structured mode) per deployed revision. The trigger is the
# catalog's on-deployed condition (synced, then healthy after the sync finished). The body is
# Go text/template with Sprig; a field an Application lacks renders as "<no value>", which the
# transformer treats as absent. The id carries finishedAt as well as the revision so that
# going back to an earlier revision (A, B, A) is a new event, not a duplicate of the first A.
# Subscribe an Application with the annotation
#   notifications.argoproj.io/subscribe.dora-on-deployed.dora-cloudevents: ""
# and put the ingest token (if DORA_INGEST_TOKENS is set) in argocd-notifications-secret under
# the key dora-ingest-token (drop the Authorization header otherwise).
NOTIFICATIONS_TEMPLATE = """\
service.webhook.dora-cloudevents: |
  url: http://dora-cloudevents.dora-cloudevents.svc.cluster.local/events
  headers:
  - name: Content-Type
    value: application/cloudevents+json
  - name: Authorization
    value: Bearer $dora-ingest-token
template.dora-app-deployed: |
  webhook:
    dora-cloudevents:
      method: POST
      body: |
        {
          "specversion": "1.0",
          "type": "io.argoproj.argocd.app.deployed",
          "source": "{{ .context.argocdUrl | default "argocd" }}",
          "id": "{{ .app.metadata.uid }}-{{ .app.status.operationState.syncResult.revision }}-{{ .app.status.operationState.finishedAt }}",
          "time": "{{ .app.status.operationState.finishedAt }}",
          "subject": "{{ .app.metadata.name }}",
          "datacontenttype": "application/json",
          "data": {
            "application": "{{ .app.metadata.name }}",
            "namespace": "{{ .app.metadata.namespace }}",
            "uid": "{{ .app.metadata.uid }}",
            "project": "{{ .app.spec.project }}",
            "destination": {
              "namespace": "{{ .app.spec.destination.namespace }}",
              "server": "{{ .app.spec.destination.server }}",
              "name": "{{ .app.spec.destination.name }}"
            },
            "repoURL": "{{ .app.spec.source.repoURL }}",
            "revision": "{{ .app.status.sync.revision }}",
            "images": {{ toJson .app.status.summary.images }},
            "finishedAt": "{{ .app.status.operationState.finishedAt }}",
            "healthStatus": "{{ .app.status.health.status }}"
          }
        }
trigger.dora-on-deployed: |
  - description: Application synced and healthy; once per deployed revision
    when: app.status.operationState != nil and app.status.operationState.phase in ['Succeeded'] and app.status.health.status == 'Healthy' and !time.Parse(app.status.health.lastTransitionTime).Before(time.Parse(app.status.operationState.finishedAt))
    oncePer: app.status.operationState?.syncResult?.revision
    send: [dora-app-deployed]
"""  # noqa: E501 (Go templates and trigger expressions read best unbroken)

_MISSING = ("", "<no value>")
_SCP_LIKE = re.compile(r"[\w.-]+@([\w.-]+):(.+)\Z")  # git@github.com:o/r.git


def transform(event: CloudEvent) -> list[CDEvent]:
    """A service.deployed for each deployed event; nothing for anything else."""
    if event.get("type") != DEPLOYED:
        return []
    data = json_data(event)
    application, uid = _text(data, "application"), _text(data, "uid")
    if not application or not uid:
        raise TransformError("the Argo CD event data has no application name or uid")
    environment = (_text(data, "destination", "namespace") or _text(data, "destination", "name")
                   or _text(data, "destination", "server"))
    if not environment:
        raise TransformError(f"Argo CD application {application!r} has no destination")
    revision, finished = _text(data, "revision"), _text(data, "finishedAt")
    images = [i for i in dig_list(data, "images") if isinstance(i, str) and i]
    if images:
        artifact = image_purl(images[0])
    else:
        artifact = f"pkg:generic/{quote(application, safe='')}"
        if revision:
            artifact += f"@{quote(revision, safe='')}"
    repository = _text(data, "repoURL")
    custom = {"revision": revision, "repository": _web_url(repository) if repository else None,
              "image": images[0] if images else None}
    return [new_cdevent(
        "service.deployed",
        key=(NAME, uid, revision or "", finished or str(event.get("id", ""))),
        source=event_source(event),
        timestamp=first_time(event, finished, lacking="finishedAt"),
        subject_id=application,
        content={"environment": {"id": environment}, "artifactId": artifact},
        custom_data={k: v for k, v in custom.items() if v})]


def _text(data: dict[str, Any], *path: str) -> str | None:
    value = dig(data, *path)
    return value if isinstance(value, str) and value not in _MISSING else None


def _web_url(repo_url: str) -> str:
    """The repository's web URL as the other sources give it (no ``.git``, https for scp-like)."""
    match = _SCP_LIKE.match(repo_url)
    url = f"https://{match.group(1)}/{match.group(2)}" if match else repo_url
    url = url.rstrip("/")
    return url[:-4] if url.endswith(".git") else url


TRANSFORMERS = [
    Transformer(
        NAME,
        transform,
        "Argo CD Notifications webhook CloudEvents (io.argoproj.argocd.app.deployed): "
        "service.deployed per deployed revision",
    )
]
