"""The hub's dedup engine against Splink on FEBRL (person records with true links), same run.

    .venv/bin/python bench/dedup_febrl.py

febrl3: deduplicate 5,000 records. febrl4: link 5,000 + 5,000 records (run as a dedup of
the union, which is what the hub does with records from several systems). F1 is over
record pairs predicted as matches at a match probability of 0.5, for both engines.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from febrl import load, scores, true_pairs  # noqa: E402

from quality.dedup import engine  # noqa: E402

THRESHOLD = 0.5


def datasets() -> dict[str, pd.DataFrame]:
    four = pd.concat([load("dataset4a"), load("dataset4b")], ignore_index=True)
    return {"febrl3": load("dataset3"), "febrl4": four}


def ours(df: pd.DataFrame) -> tuple[set, float]:
    start = time.perf_counter()
    res = engine.find_matches(df, "person")
    took = time.perf_counter() - start
    p = res.pairs[res.pairs["probability"] >= THRESHOLD]
    return {tuple(sorted(x)) for x in p[["left", "right"]].itertuples(index=False)}, took


def splink(df: pd.DataFrame) -> tuple[set, float]:
    """Splink 5 (DuckDB), set up as in its own febrl3 example."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    start = time.perf_counter()
    data = df.drop(columns=["cluster"]).fillna("")
    blocking = [block_on(c) for c in ("soc_sec_id", "given_name", "surname", "date_of_birth", "postcode")]
    settings = SettingsCreator(
        unique_id_column_name="rec_id", link_type="dedupe_only", blocking_rules_to_generate_predictions=blocking,
        comparisons=[
            cl.NameComparison("given_name"), cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ])
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(data), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.9)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    pred = linker.inference.predict(threshold_match_probability=THRESHOLD).as_pandas_dataframe()
    took = time.perf_counter() - start
    return {tuple(sorted(x)) for x in pred[["rec_id_l", "rec_id_r"]].itertuples(index=False)}, took


def main() -> int:
    import logging

    logging.disable(logging.WARNING)
    rows = []
    for name, df in datasets().items():
        truth = true_pairs(df)
        for engine_name, fn in (("hub dedup", ours), ("Splink 5", splink)):
            pred, took = fn(df)
            rows.append({"dataset": name, "engine": engine_name, "records": len(df), "true_pairs": len(truth),
                         **scores(pred, truth), "seconds": round(took, 2)})
    print("| dataset | engine | records | precision | recall | F1 | seconds |\n|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['dataset']} | {r['engine']} | {r['records']:,} | {r['precision']:.4f} | {r['recall']:.4f} | "
              f"**{r['f1']:.4f}** | {r['seconds']:.2f} |")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "dedup_febrl.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
