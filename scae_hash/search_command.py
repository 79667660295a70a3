"""`scae-hash search`: results per query, with how many lie within a radius, and the time split."""

from __future__ import annotations

import argparse
import json
import sys
import time

from scae_hash.image_search import decode_queries, find, load_index, process_seconds
from scae_hash.images import display_path


def search_command(args: argparse.Namespace) -> None:
    """Print each query's results (text or --json) and, for an SCAE index or --timings, the split."""
    startup = process_seconds()
    start = time.perf_counter()
    index = load_index(args.index_file)
    timings = {"index load": time.perf_counter() - start}
    found = find(index, decode_queries(args.queries, timings), k=args.k, radius=args.radius, rerank=args.rerank,
                 rerank_model=args.rerank_model, timings=timings)
    score = "similarity" if args.rerank or args.rerank_model else "distance"
    for query, hits in zip(args.queries, found):
        results = [(index.paths[i], float(value)) for i, value in zip(hits.ids, hits.scores)]
        if args.json:
            counts = {"within_radius": hits.total} if args.radius is not None else {}
            print(json.dumps({"query": query, **counts, "results": [{"path": p, score: s} for p, s in results]}))
            continue
        if args.radius is not None:  # say how many lie within the radius, not only how many are shown
            shown = f", showing the first {len(results)} (-k)" if len(results) < hits.total else ""
            print(f"{display_path(query)}: {hits.total or 'nothing'} within radius {args.radius}{shown}")
        else:
            print(f"{display_path(query)}:")
        for rank, (path, value) in enumerate(results, 1):
            print(f"  {rank:3d}. {display_path(path)}  ({score} {value:g})")
    if args.timings or index.model_path is not None:
        split = {"start-up": startup, **timings}
        print("timings: " + ", ".join(f"{name} {1000 * seconds:.0f} ms" for name, seconds in split.items()
                                      if seconds is not None), file=sys.stderr)
