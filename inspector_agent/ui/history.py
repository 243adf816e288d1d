"""The History tab: filtered inspection log and CSV export."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from inspector_agent import records_export
from inspector_agent.agent.service import InspectorAgent
from inspector_agent.records import RecordsError
from inspector_agent.ui.inspect import filter_choices
from inspector_agent.wording import counted

COLUMNS = ["id", "time", "user", "product", "serial", "verdict", "defects", "grounder", "feedback"]


def history_rows(
    agent: InspectorAgent, product: str | None, since: str, until: str, verdict: str | None
) -> list[list]:
    """Table rows for the filters (empty filters match everything)."""
    rows = agent.context.records.query(
        product_id=product or None,
        verdict=verdict or None,
        since=since.strip() or None,
        until=until.strip() or None,
        limit=500,
    )
    return [
        [
            r.id,
            r.ts.replace("T", " ")[:19],
            r.user,
            r.product_id,
            r.serial,
            r.verdict,
            ", ".join(r.labels),
            r.grounder,
            "" if not r.feedback else ("right" if r.feedback[-1]["correct"] else "wrong"),
        ]
        for r in rows
    ]


def build_history_tab(agent: InspectorAgent, tab: gr.Tab) -> None:
    """Lay out the History tab and wire its events; opening ``tab`` shows the latest log."""
    with gr.Row():
        product = gr.Dropdown(
            choices=filter_choices(agent),
            value="",
            label="Product",
        )
        since = gr.Textbox(label="From (YYYY-MM-DD)")
        until = gr.Textbox(label="Before (YYYY-MM-DD)")
        verdict = gr.Dropdown(
            [("any", ""), ("ok", "ok"), ("defective", "defective")], value="", label="Verdict"
        )
    with gr.Row():
        refresh = gr.Button("Show", variant="primary")
        export = gr.Button("Export CSV")
    status = gr.Markdown()
    table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True)
    download = gr.File(label="CSV", interactive=False)

    def show(product_id, start, end, wanted):
        try:
            rows = history_rows(agent, product_id, start, end, wanted)
        except RecordsError as exc:
            return gr.skip(), f"**{exc}**"
        return rows, counted(len(rows), "inspection")

    def export_csv(product_id, start, end, wanted):
        out = Path(tempfile.mkdtemp(prefix="inspector-export-")) / "inspections.csv"
        try:
            count = records_export.export_csv(
                agent.context.records,
                out,
                product_id=product_id or None,
                verdict=wanted or None,
                since=start.strip() or None,
                until=end.strip() or None,
            )
        except RecordsError as exc:
            return None, f"**{exc}**"
        return str(out), f"Exported {counted(count, 'inspection')}."

    filters = [product, since, until, verdict]
    refresh.click(show, filters, [table, status], api_name=False)
    export.click(export_csv, filters, [download, status], api_name=False)
    # products taught since the page loaded join the filter; the table is current on arrival
    tab.select(
        lambda: gr.Dropdown(choices=filter_choices(agent)), None, product, api_name=False
    ).then(show, filters, [table, status], api_name=False)
