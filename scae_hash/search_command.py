"""`scae-hash search`: results per query, with how many lie within a radius, and the time split."""

from __future__ import annotations

import json
import sys
import time

from scae_hash.image_search import decode_queries, find, load_index, process_seconds
from scae_hash.images import display_path


def search_command(index_file: str, queries: list[str], *, k: int = 10, radius: int | None = None,
                   rerank: int | None = None, rerank_model: str | None = None, as_json: bool = False,
                   show_timings: bool = False) -> None:
    """Print each query's results (text or JSON lines) and, for an SCAE index or ``show_timings``,
    the time split."""
    startup = process_seconds()
    start = time.perf_counter()
    index = load_index(index_file)
    timings = {"index load": time.perf_counter() - start}
    found = find(index, decode_queries(queries, timings), k=k, radius=radius, rerank=rerank,
                 rerank_model=rerank_model, timings=timings)
    score = "similarity" if rerank or rerank_model else "distance"
    for query, hits in zip(queries, found):
        results = [(index.paths[i], float(value)) for i, value in zip(hits.ids, hits.scores)]
        if as_json:
            counts = {"within_radius": hits.total} if radius is not None else {}
            print(json.dumps({"query": query, **counts, "results": [{"path": p, score: s} for p, s in results]}))
            continue
        if radius is not None:  # say how many lie within the radius, not only how many are shown
            shown = f", showing the first {len(results)} (-k)" if len(results) < hits.total else ""
            print(f"{display_path(query)}: {hits.total or 'nothing'} within radius {radius}{shown}")
        else:
            print(f"{display_path(query)}:")
        for rank, (path, value) in enumerate(results, 1):
            print(f"  {rank:3d}. {display_path(path)}  ({score} {value:g})")
    if show_timings or index.model_path is not None:
        split = {"start-up": startup, **timings}
        print("timings: " + ", ".join(f"{name} {1000 * seconds:.0f} ms" for name, seconds in split.items()
                                      if seconds is not None), file=sys.stderr)
