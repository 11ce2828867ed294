"""The judge's answer formats, each in its own module: text in, typed records out.

- `json_answer`: the project's JSON (schema-constrained), also the format of gold labels;
- `paper_text`: the ClaimDiff-RL paper's plain-text `[DIFFERENCE n]` blocks (and its render);
- `hall_vs_miss`: the released hall_vs_miss blocks, mapped onto claim differences;
- `holistic`: a 0-10 score for the whole caption;
- `verification`: the verification pass's verdicts per claim;
- `answer_tags`: `<think>`/`<answer>` wrappers, as the released code reads them.
"""

from __future__ import annotations

from collections.abc import Callable

from claimdiff.schemas.judge import JudgeOutput


def parser_for(output_format: str) -> Callable[[str | None], JudgeOutput]:
    """The parser of a `judge.output_format`."""
    if output_format == "paper_text":
        from claimdiff.judges.formats.paper_text import parse_paper_text

        return parse_paper_text
    if output_format == "hall_vs_miss":
        from claimdiff.judges.formats.hall_vs_miss import parse_hall_vs_miss_judge_output

        return parse_hall_vs_miss_judge_output
    from claimdiff.judges.formats.json_answer import parse_judge_output

    return parse_judge_output


def renderer_for(output_format: str) -> Callable[[JudgeOutput], str]:
    """The inverse of `parser_for`, where the format has one: gold labels rendered as a judge in
    that format would write them (the labels judge's swapped answers)."""
    if output_format == "paper_text":
        from claimdiff.judges.formats.paper_text import render_paper_text

        return render_paper_text
    if output_format == "json":
        return lambda output: output.model_dump_json()
    raise ValueError(f"output format {output_format!r} has no renderer")
