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


def deployments(home: str | None = None, build: str | None = None) -> list[Any]:
    """RunnerDeployments for every flow, with optional default workspace and build."""
    defaults = {k: v for k, v in (("home", home), ("build", build)) if v}
    return [fl.to_deployment(name=name, description=desc, parameters={**defaults, **fixed},
                             tags=["calops"])
            for name, (fl, desc, fixed) in DEPLOYMENTS.items()]


def serve(home: str | None = None, build: str | None = None, limit: int | None = None) -> None:
    """Serve every deployment until interrupted."""
    from prefect import serve as prefect_serve

    prefect_serve(*deployments(home, build), limit=limit, print_starting_message=True)


if __name__ == "__main__":
    serve()
