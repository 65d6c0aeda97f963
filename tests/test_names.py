"""Name keys: the same company typed differently in CRM and U8 gets one key."""
import pandas as pd

from quality import names


def test_name_key_folds_what_typists_vary_and_keeps_branches_apart():
    keys = names.name_key(pd.Series([
        "上海华测检测技术有限公司", "上海华测检测技术有限责任公司", "上海 华测检测技术（有限公司）",
        "上海华测检测技术", "上海华测检测技术有限公司北京分公司", "ＡＢＣ贸易有限公司", "abc贸易有限公司"]))
    assert keys[0] == keys[1] == keys[3]
    assert keys[4] != keys[0]
    assert keys[5] == keys[6]
