"""Entity resolution of Chinese companies: normalisation, seeded duplicates, the review
queue, undoing a merge, and the legacy-export command."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
from sqlalchemy import select

from flows.customer_master import seats
from hub import model, store
from quality import review
from quality.dedup import engine, prepare
from quality.evaluate import pairwise
from tests.flowkit import CrmClient, crm_accounts, run_flow


def prep(names):
    return prepare.company(pd.DataFrame({"name": names, "phone": None, "address": None}))


def test_name_variants_fold_to_one_core_and_keep_what_makes_another_entity():
    p = prep(["上海华测检测技术有限公司", "华测检测技术（上海）有限公司", "上海 华测检测技术有限责任公司",
              "上海华测检测技术", "上海华测检测技术有限公司北京分公司", "阿里巴巴（中国）有限公司",
              "中国石油化工股份有限公司", "ＡＢＣ贸易（深圳）有限公司", "abc贸易有限公司"])
    core = p["name_core"].tolist()
    assert core[0] == core[1] == core[2] == core[3] == "华测检测技术"
    assert p["branch"].iloc[4] != p["branch"].iloc[0] and core[4] == core[0]   # a branch is told apart
    assert core[5].startswith("阿里巴巴")                                      # 阿里 is not a place here
    assert core[6].startswith("中国石油化工")                                  # 中国 is part of the name
    assert core[7] == core[8] == "abc贸易"
    assert p["name_pinyin"].iloc[0] == "huacejiancejishu"


def test_different_usccs_are_never_merged_however_alike_the_names():
    df = pd.DataFrame([
        {"_row": "a", "name": "深圳市腾达电子有限公司", "uscc": "914403001922038216", "phone": "0755-26581234", "address": None},
        {"_row": "b", "name": "深圳市腾达电子有限公司", "uscc": "9144030071526726XG", "phone": "0755-26581234", "address": None},
        {"_row": "c", "name": "深圳腾达电子有限公司", "uscc": "914403001922038216", "phone": None, "address": None},
    ] + [{"_row": f"x{i}", "name": f"公司{i}号贸易有限公司", "uscc": None, "phone": None, "address": None} for i in range(50)])
    res = engine.find_matches(df, "customer")
    cluster = dict(zip(res.records["_row"], res.records["cluster"]))
    assert cluster["a"] == cluster["c"] and cluster["a"] != cluster["b"]


def test_one_valid_uscc_is_one_company_whatever_the_names_and_only_a_reviewer_splits_it():
    """A former name, an abbreviation, a branch-looking suffix: the same valid USCC links them
    (a second ERP customer for one legal entity is worse than a wrong name)."""
    df = pd.DataFrame([
        {"_row": "u8", "name": "麟优隆工程技术有限责任公司", "uscc": "91310000498208828L", "phone": None, "address": None},
        {"_row": "crm", "name": "麟优隆模具有限责任公司", "uscc": "91310000498208828L", "phone": None, "address": None},
        {"_row": "abbr", "name": "海普集团武汉", "uscc": "91420100114321769A", "phone": None, "address": None},
        {"_row": "full", "name": "合肥海普智能装备集团有限公司武汉分公司", "uscc": "91420100114321769A",
         "phone": None, "address": None},
        {"_row": "bad", "name": "北京星河贸易有限公司", "uscc": "91310000498208828X", "phone": None, "address": None},
    ] + [{"_row": f"x{i}", "name": f"公司{i}号贸易有限公司", "uscc": None, "phone": None, "address": None} for i in range(50)])
    cluster = dict(zip(*[engine.find_matches(df, "customer").records[c] for c in ("_row", "cluster")]))
    assert cluster["u8"] == cluster["crm"] and cluster["abbr"] == cluster["full"]
    assert cluster["bad"] != cluster["u8"]  # a code that fails its check character is no evidence
    apart = pd.DataFrame([{"left": "u8", "right": "crm", "decision": "distinct"}])
    split = engine.find_matches(df, "customer", decisions=apart).records
    assert len(set(split.loc[split["_row"].isin(["u8", "crm"]), "cluster"])) == 2


def _truth(sb) -> dict[str, str]:
    t = json.loads((sb.folder / "truth.json").read_text(encoding="utf-8"))
    return {f"crm:{r['crm_id']}": r["company_id"] for r in t["crm"]} | {f"u8:{r['u8_code']}": r["company_id"] for r in t["u8"]}


def _clusters() -> pd.Series:
    with store.engine().begin() as conn:
        x = pd.DataFrame(conn.execute(select(model.xref.c.system, model.xref.c.native_key, model.xref.c.hub_id)
                                      .where(model.xref.c.entity == "customer")).all(),
                         columns=["system", "native_key", "hub_id"])
    return x["hub_id"].set_axis(x["system"] + ":" + x["native_key"])


def test_the_seeded_duplicates_are_found_with_no_false_merge(sandbox):
    run_flow("customer_master", "dedup-1")
    clusters = _clusters()
    truth = pd.Series(_truth(sandbox))
    score = pairwise(truth.reindex(clusters.index), clusters)
    assert score["false_merges"] == 0, score
    assert score["recall"] >= 0.95, score


def test_a_reviewers_merge_sticks_and_can_be_undone(sandbox):
    run_flow("customer_master", "rv-1")
    truth = _truth(sandbox)
    clusters = _clusters()
    accounts = [a for a in crm_accounts(sandbox).values() if f"crm:{a['id']}" in clusters.index and a.get("erpCode__c")]
    a, b = next((x, y) for x in accounts for y in accounts
                if truth[f"crm:{x['id']}"] != truth[f"crm:{y['id']}"] and clusters[f"crm:{x['id']}"] != clusters[f"crm:{y['id']}"])
    na, nb = f"crm:{a['id']}", f"crm:{b['id']}"
    with store.engine().begin() as conn:
        hub = review.merge(conn, na, nb, by="steward", seats=seats())
    crm = CrmClient(sandbox)
    crm.patch("account", str(b["id"]), {"phone": "021-64889999"})   # b is read and resolved again
    run_flow("customer_master", "rv-2")
    assert _clusters()[na] == _clusters()[nb] == hub
    codes = {k: acc["erpCode__c"] for k, acc in crm_accounts(sandbox).items()}
    assert codes[str(a["id"])] == codes[str(b["id"])]                   # one company, one U8 code
    with store.engine().begin() as conn:
        d = model.match_decision.c
        decision = conn.execute(select(d.id).where(d.source == "reviewer", d.decision == "merge")).scalar()
        review.decide(conn, decision, "undo", by="steward", seats=seats())
    crm.patch("account", str(b["id"]), {"phone": "021-64889998"})
    run_flow("customer_master", "rv-3")
    after = _clusters()
    assert after[na] != after[nb]
    codes = {k: acc["erpCode__c"] for k, acc in crm_accounts(sandbox).items()}
    assert codes[str(a["id"])] != codes[str(b["id"])]


def test_the_legacy_export_command_writes_clusters_golden_values_and_reasons(tmp_path):
    rows = [
        {"id": "1", "name": "上海华测检测技术有限公司", "uscc": "914403001922038216", "phone": "021-64881234", "source": "u8"},
        {"id": "2", "name": "华测检测技术（上海）有限责任公司", "uscc": "", "phone": "021-64881234", "source": "crm"},
        {"id": "3", "name": "北京元亨科技有限公司", "uscc": "", "phone": "010-82345678", "source": "crm"},
    ] + [{"id": str(10 + i), "name": f"杭州第{i}贸易有限公司", "uscc": "", "phone": "", "source": "crm"} for i in range(40)]
    src = tmp_path / "customers.csv"
    pd.DataFrame(rows).to_csv(src, index=False, encoding="gb18030")
    dst = tmp_path / "clusters.csv"
    out = subprocess.run([sys.executable, "-m", "quality", "dedup", str(src), "-o", str(dst), "--encoding", "gb18030"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["records"] == len(rows)
    res = pd.read_csv(dst, dtype=str).set_index("id")
    assert res.loc["1", "cluster_id"] == res.loc["2", "cluster_id"] != res.loc["3", "cluster_id"]
    assert res.loc["2", "golden_uscc"] == "914403001922038216"
    assert "matches" in res.loc["2", "reason"] and res.loc["3", "reason"].startswith("no match")
