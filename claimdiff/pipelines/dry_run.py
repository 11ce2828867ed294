"""`claimdiff judge --dry-run`: the resolved options and the pipeline graph; nothing runs.

The graph is built exactly as a run builds it (`pipelines.judge.build`), with the run's own
setup and manifests, so a dry run also checks the configuration, the prompts and that the
manifests exist. It never touches the output folder: no claim, no folder, no shard. The
pipeline is constructed with an in-process runner object that is never started, so no cluster
client (Dataflow's, a job server's) is created or contacted.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from claimdiff.io.manifest import expand_manifests
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.pipelines.judge import JudgeJob, build
from claimdiff.runners.options import sanitised_options

# Beam's own expansions below this depth (WriteToParquet's internals, ...) are not claimdiff's
# graph; deeper levels are left out of the picture.
MAX_DEPTH = 3


class _Graph(PipelineVisitor):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def enter_composite_transform(self, node: AppliedPTransform) -> None:
        self._add(node)

    def visit_transform(self, node: AppliedPTransform) -> None:
        self._add(node)

    def _add(self, node: AppliedPTransform) -> None:
        if not node.full_label:
            return  # the pipeline's root
        depth = node.full_label.count("/")
        if depth >= MAX_DEPTH:
            return
        name = node.full_label.rsplit("/", 1)[-1]
        shown = ""
        if depth == 0:  # a stage: the stages it reads from
            producers = {p.producer.full_label.split("/", 1)[0] for p in node.inputs
                         if getattr(p, "producer", None) is not None}
            producers.discard("")
            shown = f"  <- {', '.join(sorted(producers))}" if producers else ""
        self.lines.append(f"{'  ' * depth}{name}{shown}")


def pipeline_graph(job: JudgeJob, options: PipelineOptions) -> list[str]:
    """The judge pipeline's transforms, nested by composite, top level with its inputs."""
    setup = JudgeSetup.build(job.config)
    manifests = expand_manifests(job.manifest, job.config.images.allowed_schemes)
    pipeline = beam.Pipeline(runner=FnApiRunner(), options=options)
    build(pipeline, job, manifests, setup)
    graph = _Graph()
    pipeline.visit(graph)
    return graph.lines


def describe(job: JudgeJob, options: PipelineOptions, preset: str) -> dict[str, Any]:
    """What `--dry-run` prints: the preset, the options as resolved, the graph."""
    return {"runner_preset": preset, "manifest": job.manifest, "output": job.output,
            "pipeline_options": sanitised_options(options),
            "graph": pipeline_graph(job, options)}


def render(description: dict[str, Any]) -> str:
    lines = [f"dry run (nothing runs, {description['output']} is not touched)",
             f"runner preset: {description['runner_preset']}",
             f"manifest: {description['manifest']}", "pipeline options:"]
    lines += [f"  --{key}={value}" for key, value in description["pipeline_options"].items()]
    lines.append("pipeline graph:")
    lines += [f"  {line}" for line in description["graph"]]
    return "\n".join(lines)
