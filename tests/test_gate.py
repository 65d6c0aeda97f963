"""The Great Expectations gate quarantines failing rows by name and lets the rest through."""
import pandas as pd

from quality import gate


def test_gate_splits_rows_and_names_the_expectation_that_failed():
    df = pd.DataFrame([
        {"_row": "crm:1", "name": "上海华测检测技术有限公司", "uscc": "914403001922038216", "phone": "021-64881234"},
        {"_row": "crm:2", "name": None, "uscc": None, "phone": None},
        {"_row": "crm:3", "name": "'; DROP TABLE Customer;--", "uscc": None, "phone": "13812345678"},
        {"_row": "crm:4", "name": "北京元亨科技有限责任公司", "uscc": "914403001922038217", "phone": "12345"},
        {"_row": "crm:5", "name": "12345678", "uscc": None, "phone": None},
        {"_row": "crm:6", "name": "深圳市腾达电子股份有限公司", "uscc": None, "phone": "0755-26581234"},
    ])
    res = gate.validate("customer", df)
    assert sorted(res.good["_row"]) == ["crm:1", "crm:6"]
    by_row = res.failures.groupby("_row")["expectation"].agg(set).to_dict()
    assert by_row["crm:2"] == {"name_present"}
    assert "name_not_junk" in by_row["crm:3"]
    assert {"uscc_check_character", "phone_format"} <= by_row["crm:4"]
    assert "name_not_junk" in by_row["crm:5"]
    assert all(r for r in res.failures["reason"])
