"""What each source really sends, built from the shapes in tests/transformers/<source>/.

Kubernetes (Knative ApiServerSource, Resource mode: the whole Deployment object), Tekton
(pipeline run CloudEvents), GitHub (Knative GitHubSource CloudEvents carrying the webhook
payload), PagerDuty (v3 webhook bodies, posted to /webhooks/pagerduty) and native CDEvents.
Only the fields the real tools send; nothing here is shaped for the transformers' benefit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dora_cloudevents.events import CloudEvent, format_rfc3339

Json = dict[str, Any]
ORG = "acme"


def _t(moment: datetime) -> str:
    return format_rfc3339(moment)


def repository(name: str) -> Json:
    return {"name": name, "full_name": f"{ORG}/{name}", "private": True,
            "html_url": f"https://github.com/{ORG}/{name}", "default_branch": "main",
            "owner": {"login": ORG}}


def _github(event_id: str, kind: str, repo: str, at: datetime, data: Json,
            subject: str | None = None) -> CloudEvent:
    """A Knative GitHubSource CloudEvent (type dev.knative.source.github.<X-GitHub-Event>)."""
    event: CloudEvent = {"specversion": "1.0", "id": event_id,
                         "source": f"https://github.com/{ORG}/{repo}",
                         "type": f"dev.knative.source.github.{kind}", "time": _t(at),
                         "datacontenttype": "application/json", "data": data}
    if subject:
        event["subject"] = subject
    return event


def github_push(event_id: str, repo: str, branch: str, before: str,
                commits: list[tuple[str, datetime, str]], author: str) -> CloudEvent:
    """A push of ``commits`` (sha, time, message), oldest first, to ``branch``."""
    listed = [{"id": sha, "tree_id": sha[::-1], "distinct": True, "message": message,
               "timestamp": _t(at), "url": f"https://github.com/{ORG}/{repo}/commit/{sha}",
               "author": {"name": author, "username": author},
               "committer": {"name": author, "username": author}}
              for sha, at, message in commits]
    head: Json = listed[-1]
    pushed_at = commits[-1][1] + timedelta(seconds=20)
    data = {"ref": f"refs/heads/{branch}", "before": before, "after": head["id"],
            "created": False, "deleted": False, "forced": False,
            "compare": f"https://github.com/{ORG}/{repo}/compare/{before[:12]}...{head['id'][:12]}",
            "commits": listed, "head_commit": head, "repository": repository(repo),
            "pusher": {"name": author}, "sender": {"login": author}}
    return _github(event_id, "push", repo, pushed_at, data)


def github_pull_request(event_id: str, repo: str, number: int, action: str, title: str,
                        author: str, head_branch: str, head_sha: str, created: datetime,
                        at: datetime, merge_sha: str | None = None) -> CloudEvent:
    """``opened`` at ``created``, or ``closed`` (merged when ``merge_sha`` is given) at ``at``."""
    merged = action == "closed" and merge_sha is not None
    pull = {"url": f"https://api.github.com/repos/{ORG}/{repo}/pulls/{number}",
            "html_url": f"https://github.com/{ORG}/{repo}/pull/{number}", "number": number,
            "state": "closed" if action == "closed" else "open", "title": title,
            "user": {"login": author}, "body": None, "created_at": _t(created),
            "updated_at": _t(at), "closed_at": _t(at) if action == "closed" else None,
            "merged_at": _t(at) if merged else None, "merged": merged,
            "merge_commit_sha": merge_sha, "draft": False,
            "head": {"ref": head_branch, "sha": head_sha, "label": f"{ORG}:{head_branch}"},
            "base": {"ref": "main", "label": f"{ORG}:main"}, "commits": 2, "additions": 40,
            "deletions": 12, "changed_files": 3}
    data = {"action": action, "number": number, "pull_request": pull,
            "repository": repository(repo), "sender": {"login": author}}
    return _github(event_id, "pull_request", repo, at, data, subject=str(number))


def kubernetes_rollout(event_id: str, service: str, namespace: str, uid: str, revision: int,
                       image: str, repo_url: str, at: datetime, complete: bool,
                       rollback: bool = False) -> CloudEvent:
    """An ApiServerSource ``update`` of a Deployment: mid-rollout, or the rollout complete."""
    generation = revision
    replicas = 3
    annotations = {"deployment.kubernetes.io/revision": str(revision)}
    if rollback:
        annotations["dora-cloudevents.dev/rollback"] = str(revision)
    progressing = ({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{service}-{uid[:10]}" has successfully progressed.',
                    "lastUpdateTime": _t(at), "lastTransitionTime": _t(at)} if complete else
                   {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                    "message": f'ReplicaSet "{service}-{uid[:10]}" is progressing.',
                    "lastUpdateTime": _t(at), "lastTransitionTime": _t(at)})
    status = {"observedGeneration": generation, "replicas": replicas if complete else 4,
              "updatedReplicas": replicas if complete else 1,
              "readyReplicas": replicas, "availableReplicas": replicas,
              "conditions": [{"type": "Available", "status": "True",
                              "reason": "MinimumReplicasAvailable",
                              "lastUpdateTime": _t(at), "lastTransitionTime": _t(at)},
                             progressing]}
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": service, "namespace": namespace, "uid": uid,
                        "generation": generation, "labels": {"app": service},
                        "annotations": annotations,
                        "creationTimestamp": "2024-01-08T10:00:00Z"},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": service}},
                    "template": {"metadata": {"labels": {"app": service},
                                              "annotations": {
                                                  "org.opencontainers.image.source": repo_url}},
                                 "spec": {"containers": [{"name": service, "image": image,
                                                          "ports": [{"containerPort": 8080}]}]}},
                    "strategy": {"type": "RollingUpdate"}},
           "status": status}
    return {"specversion": "1.0", "id": event_id, "source": "https://10.96.0.1:443",
            "type": "dev.knative.apiserver.resource.update",
            "subject": f"/apis/apps/v1/namespaces/{namespace}/deployments/{service}",
            "time": _t(at), "datacontenttype": "application/json", "data": obj}


def tekton_run(event_id: str, phase: str, name: str, uid: str, pipeline: str,
               params: dict[str, str], started: datetime, at: datetime,
               labels: dict[str, str] | None = None) -> CloudEvent:
    """A Tekton pipeline run CloudEvent; ``phase`` is started, successful or failed."""
    conditions = {
        "started": {"type": "Succeeded", "status": "Unknown", "reason": "Started"},
        "successful": {"type": "Succeeded", "status": "True", "reason": "Succeeded",
                       "message": "Tasks Completed: 3 (Failed: 0, Cancelled 0), Skipped: 0"},
        "failed": {"type": "Succeeded", "status": "False", "reason": "Failed",
                   "message": "Tasks Completed: 3 (Failed: 1, Cancelled 0), Skipped: 0"},
    }[phase]
    status: Json = {"conditions": [{**conditions, "lastTransitionTime": _t(at)}],
                    "startTime": _t(started)}
    if phase != "started":
        status["completionTime"] = _t(at)
    run = {"kind": "PipelineRun", "apiVersion": "tekton.dev/v1",
           "metadata": {"name": name, "namespace": "ci", "uid": uid,
                        "generateName": f"{pipeline}-",
                        "labels": {"tekton.dev/pipeline": pipeline, **(labels or {})},
                        "creationTimestamp": _t(started)},
           "spec": {"pipelineRef": {"name": pipeline},
                    "params": [{"name": key, "value": value} for key, value in params.items()]},
           "status": status}
    return {"specversion": "1.0", "id": event_id,
            "source": f"/apis///namespaces/ci//{name}",
            "type": f"dev.tekton.event.pipelinerun.{phase}.v1", "subject": name,
            "time": _t(at), "datacontenttype": "application/json", "data": {"pipelineRun": run}}


def pagerduty_webhook(event_id: str, event_type: str, incident_id: str, number: int,
                      title: str, service: str, service_id: str, created: datetime,
                      at: datetime) -> Json:
    """A PagerDuty v3 webhook body (what /webhooks/pagerduty receives)."""
    base = "https://acme.pagerduty.com"
    reference = {"html_url": f"{base}/services/{service_id}", "id": service_id,
                 "self": f"https://api.pagerduty.com/services/{service_id}",
                 "summary": service, "type": "service_reference"}
    incident = {"id": incident_id, "type": "incident",
                "self": f"https://api.pagerduty.com/incidents/{incident_id}",
                "html_url": f"{base}/incidents/{incident_id}", "number": number,
                "status": event_type.removeprefix("incident."), "title": title,
                "incident_key": incident_id.lower(), "created_at": _t(created),
                "service": reference, "urgency": "high", "assignees": [],
                "priority": {"summary": "P2", "type": "priority_reference",
                             "id": "PSO75BM"}}
    return {"event": {"id": event_id, "event_type": event_type, "resource_type": "incident",
                      "occurred_at": _t(at), "agent": reference, "client": None,
                      "data": incident}}


def cdevent_deployed(event_id: str, service: str, environment: str, artifact: str,
                     revision: str, repo_url: str, at: datetime) -> Json:
    """A native service.deployed CDEvent (spec 0.5.1), as a deploy script would post it."""
    return {"context": {"specversion": "0.5.1", "id": event_id, "source": "/acme/deploy-bot",
                        "type": "dev.cdevents.service.deployed.0.3.0", "timestamp": _t(at)},
            "subject": {"id": service, "content": {"environment": {"id": environment},
                                                   "artifactId": artifact}},
            "customData": {"revision": revision, "repository": repo_url}}
