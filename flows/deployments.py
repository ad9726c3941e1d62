"""The Prefect deployments calops serves: one per flow, defined here in code.

`calops serve` (or `python -m flows.deployments`) registers them with the Prefect API named by
PREFECT_API_URL and runs them when triggered, from the UI, the CLI
(`prefect deployment run process/calops-process -p home=... -p build=11.2`) or the client
(`prefect.deployments.run_deployment`). A deployment's parameters are identities and names only
(workspace path, build, exposure ids), never data.
"""

from __future__ import annotations

from typing import Any

from flows import flows
from transforms import registry

DEPLOYMENTS = {
    "calops-process": (flows.process, "Every stage for the selected (default: all) exposures.", {}),
    "calops-reprocess": (flows.reprocess, "Reprocess the catalog under a build; only what changed runs.", {}),
    **{f"calops-{st.name}": (flows.stage, f"{st.name}: {st.doc}, for the named {st.subject}s.",
                             {"stage": st.name})
       for st in registry.stages().values()},
}


NEW_DATA = "calops-new-data"


def deployments(home: str | None = None, build: str | None = None, cron: str | None = None,
                on_ingest: bool = False) -> list[Any]:
    """RunnerDeployments for every flow, with optional default workspace and build. With
    ``cron`` or ``on_ingest``, one more deployment, ``calops-new-data``, reprocesses the
    exposures the build has not processed since they were ingested (``stale``): on that
    schedule, and/or whenever ``calops ingest`` emits an ingest event."""
    from prefect.events import DeploymentEventTrigger

    from flows.events import INGESTED

    defaults = {k: v for k, v in (("home", home), ("build", build)) if v}
    out = [fl.to_deployment(name=name, description=desc, parameters={**defaults, **fixed},
                            tags=["calops"])
           for name, (fl, desc, fixed) in DEPLOYMENTS.items()]
    if cron or on_ingest:
        triggers = [DeploymentEventTrigger(
            name="calops: reprocess newly ingested exposures", expect={INGESTED},
            match={"prefect.resource.id": "calops.exposure.*"},
            parameters={**defaults, "stale": True})] if on_ingest else None
        out.append(flows.reprocess.to_deployment(
            name=NEW_DATA, cron=cron, triggers=triggers, tags=["calops"],
            parameters={**defaults, "stale": True},
            description="Reprocess the exposures the build has not processed since they "
                        "were ingested (new data, reissues)."))
    return out


def serve(home: str | None = None, build: str | None = None, limit: int | None = None,
          cron: str | None = None, on_ingest: bool = False) -> None:
    """Serve every deployment until interrupted."""
    from prefect import serve as prefect_serve

    prefect_serve(*deployments(home, build, cron, on_ingest), limit=limit,
                  print_starting_message=True)


if __name__ == "__main__":
    serve()
