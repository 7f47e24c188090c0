"""Checks across manifests for data-quality jobs: a dataset's asset checks have distinct names,
whether its writer or a data-quality job defines them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flare_assets.spec.loader import LoadedJob


def check_quality_names(jobs: list[LoadedJob]) -> list[str]:
    """A data-quality job's check names differ from the other checks on the same dataset."""
    owners: dict[tuple[str, str], str] = {}
    for lj in jobs:
        job = lj.dag_job.job
        base = lj.where()
        for oi, output in enumerate(job.outputs):
            for i, a in enumerate(job.assertions_for(output)):
                owners.setdefault((str(output.address), a.check_name(i)), f"{base}.outputs[{oi}]")
    problems = []
    for lj in jobs:
        job = lj.dag_job.job
        if job.outputs:
            continue
        base = lj.where()
        positions = {id(a): n for n, a in enumerate(job.assertions)}
        for item in job.inputs:
            for i, a in enumerate(job.assertions_for_input(item.name)):
                key = (str(item.address), a.check_name(i))
                where = f"{base}.assertions[{positions[id(a)]}]"
                if key in owners:
                    problems.append(
                        f"{where}: check {key[1]!r} on {key[0]} is also defined by {owners[key]}; "
                        "give the assertion another name"
                    )
                else:
                    owners[key] = where
    return problems
