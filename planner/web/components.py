"""Small Dash building blocks shared by the pages: cards, banners, placeholders."""

from __future__ import annotations

from collections.abc import Sequence

from confscale.planner.web.view import Card, Message
from dash import dcc, html


def card(item: Card) -> html.Div:
    return html.Div(
        [
            html.Div(item.title, className="card-title"),
            html.Div(item.value, className="card-value", id=f"card-{item.key}-value"),
            html.Div(item.detail, className="card-detail"),
        ],
        className=f"card tone-{item.tone}",
        id=f"card-{item.key}",
    )


def cards(items: Sequence[Card]) -> list[html.Div]:
    return [card(item) for item in items]


def banners(items: Sequence[Message]) -> list[html.Div]:
    return [
        html.Div(
            [html.Strong(item.title + ": "), html.Span(item.text)],
            className=f"banner banner-{item.tone}",
        )
        for item in items
    ]


def waiting(text: str = "The planner has no result yet; see the message above.") -> html.Div:
    return html.Div(text, className="waiting", id="waiting")


def graph(graph_id: str, height: int = 420) -> dcc.Loading:
    return dcc.Loading(
        dcc.Graph(id=graph_id, style={"height": f"{height}px"}, config={"displaylogo": False}),
        type="default",
    )


def error_figure(text: str) -> dict[str, object]:
    """An empty figure that says why it is empty (for the rare failing callback)."""
    return {
        "data": [],
        "layout": {
            "annotations": [{"text": text, "showarrow": False, "xref": "paper", "yref": "paper"}],
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
        },
    }
