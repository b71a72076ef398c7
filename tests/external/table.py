"""Markdown tables of corpus outcomes: docs/byom.md (one row per model) and the team's status sheet."""

from __future__ import annotations

from tests.external.runner import FAILURES, Outcome


def _share(n: int | None, total: int) -> str:
    return "-" if n is None or not total else f"{n}/{total} ({n / total:.1%})"


def outcome_row(o: Outcome, source: str) -> str:
    klass = o.klass + (f" ({o.reason})" if o.klass == "twin-only" and o.reason else "")
    if o.klass == "refused":
        klass = f"refused: {o.detail}"
    flag = " **!**" if o.klass in FAILURES or (o.expect != o.klass and not o.klass.startswith(o.expect)) else ""
    cells = [
        f"`{o.model}`",
        source,
        o.export,
        klass.replace("|", "/") + flag,
        o.expect,
        (o.claim or "-") + (f" (with --expect on {o.expect_rows} torch rows)" if o.expect_rows else ""),
        _share(o.torch_fast, o.rows),
        _share(o.fast_csim, o.csim_rows),
        _share(o.torch_csim, o.csim_rows),
        "-" if o.max_diff is None else f"{o.max_diff:.3g}",
        "-" if o.argmax is None else f"{o.argmax:.1%}",
        ", ".join(f"{k} {v:.0%}" for k, v in o.per_set.items() if v < 1.0) or ("all 100%" if o.per_set else "-"),
        (
            (o.detail if o.klass != "refused" else "")
            + (f"; first divergent: {o.first_divergent}" if o.first_divergent else "")
        ).replace("|", "/")[:300],
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| model | source | export | outcome | required | tool claims | torch == fast (rows) | fast == csim (rows) "
    "| torch == csim (rows) "
    "| max abs diff | argmax agree | input sets below 100% | failure detail |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def markdown_table(outcomes: list[Outcome], sources: dict[str, str]) -> str:
    return "\n".join([HEADER, *(outcome_row(o, sources.get(o.model, "")) for o in outcomes)])


def summary_counts(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.klass] = counts.get(o.klass, 0) + 1
    return dict(sorted(counts.items()))


STATUS_HEADER = (
    "| model | export | outcome now | required | tool claims | torch == fast | torch == csim | input sets below 100% "
    "| first divergent layer (qonnx vs fast) | failure text |\n|---|---|---|---|---|---|---|---|---|---|"
)


def status_row(o: Outcome) -> str:
    ok = o.klass not in FAILURES and (o.klass == o.expect or o.klass.startswith(o.expect))
    cells = [
        f"`{o.model}`",
        o.export,
        ("" if ok else "**") + o.klass + ("" if ok else "**"),
        o.expect,
        o.claim or "-",
        _share(o.torch_fast, o.rows),
        _share(o.torch_csim, o.csim_rows),
        ", ".join(f"{k} {v:.0%}" for k, v in o.per_set.items() if v < 1.0) or "-",
        (o.first_divergent or "-").replace("|", "/"),
        _failure_text(o),
    ]
    return "| " + " | ".join(cells) + " |"


def _failure_text(o: Outcome) -> str:
    text = o.detail or (f"inexact layers: {o.reason}" if o.reason else "")
    notes = [n for n in o.notes if n not in text]
    if notes:
        text += (" -- " if text else "") + "tool said: " + " / ".join(notes)
    return (text or "-").replace("|", "/")[:500]


def status_table(outcomes: list[Outcome]) -> str:
    return "\n".join([STATUS_HEADER, *(status_row(o) for o in outcomes)])
