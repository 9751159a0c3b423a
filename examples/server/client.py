"""Talk to `system2 serve` with the official OpenAI client: list the profiles, ask one,
adjust it per request, and watch a stream (progress, then the answer).

Run the server first (see server.yaml), then:
    SYSTEM2_API_KEY=change-me python examples/server/client.py ["question"] [--url URL]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from openai import OpenAI

DEFAULT_QUESTION = "A train travels 60 km in 45 minutes. What is its speed in km/h?"


def _extra(obj: Any) -> dict[str, Any]:
    """The response's ``system2`` field (OpenAI's types keep unknown fields)."""
    data: dict[str, Any] = obj.to_dict()
    field: dict[str, Any] = data.get("system2") or {}
    return field


def main(question: str, url: str) -> None:
    client = OpenAI(base_url=f"{url}/v1", api_key=os.environ.get("SYSTEM2_API_KEY", "none"))
    print("profiles:", ", ".join(m.id for m in client.models.list()))

    reply = client.chat.completions.create(
        model="math-sc5",
        messages=[{"role": "user", "content": question}],
        extra_body={"system2": {"n": 3, "max_total_tokens": 4000}},
    )
    summary = _extra(reply)
    print(f"\nmath-sc5 (n=3): {summary.get('answer')}  finish={reply.choices[0].finish_reason}")
    print(f"vote: {(summary.get('vote') or {}).get('counts')}; usage: {reply.usage}")

    print("\nstreaming 'routed':")
    stream = client.chat.completions.create(
        model="routed", messages=[{"role": "user", "content": question}], stream=True
    )
    for chunk in stream:
        note = _extra(chunk)
        if note.get("event") == "progress":
            print(f"  {note['samples']} samples, tally {note['tally']}")
        for choice in chunk.choices:
            if choice.delta.content:
                print(choice.delta.content, end="", flush=True)
            if choice.finish_reason:
                print(f"\n[finish: {choice.finish_reason}; usage: {chunk.usage}]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    main(args.question, args.url)
