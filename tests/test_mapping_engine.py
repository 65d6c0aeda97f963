"""The mapping engine maps whole frames and names every record it cannot map."""
import pandas as pd

from mappings import engine


def crm_frame(rows):
    return pd.DataFrame(rows)


def test_messy_crm_accounts_are_cleaned_into_the_canonical_shape():
    spec = engine.load_spec("crm_account_to_customer")
    df = crm_frame([{"id": 1, "accountName": "  上海 华测检测技术(有限公司)\u3000", "uscc__c": " 9144 0300 1922 038216 ",
                     "phone": "０２１－６４８８１２３４", "updatedAt": 1700000000000}])
    res = engine.apply(spec, df)
    assert res.errors.empty
    row = res.frame.iloc[0]
    assert row["name"] == "上海华测检测技术（有限公司）"
    assert row["uscc"] == "914403001922038216"
    assert row["phone"] == "021-64881234"
    assert str(row["source_updated_at"]).startswith("2023-11-14")
    assert row["_key"] == "1"


def test_wrong_types_missing_fields_and_overlong_values_are_reported_not_dropped():
    spec = engine.load_spec("crm_account_to_customer")
    df = crm_frame([
        {"id": 1, "accountName": "", "updatedAt": 1},                      # required name missing
        {"id": 2, "accountName": "北京甲公司", "updatedAt": "yesterday"},    # wrong type
        {"id": 3, "accountName": {"zh": "x"}, "updatedAt": 1},              # object where text is due
        {"id": 4, "accountName": "北京乙公司", "phone": 13812345678, "updatedAt": 2},  # number phone: fine
        {"id": None, "accountName": "无主键公司", "updatedAt": 3},           # no key
    ])
    res = engine.apply(spec, df)
    failed = set(res.errors["_row"])
    assert failed == {0, 1, 2, 4}
    assert res.frame["_key"].tolist() == ["4"]
    assert res.frame.iloc[0]["phone"] == "13812345678"
    reasons = " ".join(res.errors["reason"])
    assert "required value missing" in reasons and "expected epoch_ms" in reasons and "expected str" in reasons


def test_outbound_spec_enforces_u8_lengths_and_value_maps():
    spec = engine.load_spec("customer_to_u8")
    df = pd.DataFrame([{"name": "甲" * 99, "category_code": None}, {"name": "乙公司", "category_code": "02"}])
    res = engine.apply(spec, df)
    assert res.errors["_row"].tolist() == [0]
    assert "longer than 98" in res.errors["reason"].iloc[0]
    assert res.frame.iloc[0]["sort_code"] == "02"
