"""Chinese company-name keys for exact matching (fuzzy scoring builds on the same key).

The key folds what typists vary and keeps what makes a different legal entity: full- and
half-width forms, brackets, spaces and the legal-form suffix (有限公司 / 有限责任公司 /
股份有限公司 ...) are folded; a branch marker (分公司, 分行, 办事处 ...) is kept, because
a branch is its own legal entity with its own USCC.
"""
from __future__ import annotations

import re

import pandas as pd

LEGAL_FORMS = ("股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "集团公司", "公司")
_FORM_AT_END = re.compile("(?:" + "|".join(LEGAL_FORMS) + ")$")
_NOISE = re.compile(r"[\s\u3000()（）\[\]【】〔〕<>《》·.,，。、\-_/'\"“”‘’]+")


PROVINCES = ("北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建",
             "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海",
             "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门")
CITIES = ("深圳", "广州", "杭州", "南京", "苏州", "无锡", "常州", "宁波", "温州", "嘉兴", "绍兴", "合肥", "福州", "厦门",
          "泉州", "南昌", "济南", "青岛", "烟台", "潍坊", "郑州", "洛阳", "武汉", "长沙", "成都", "绵阳", "贵阳", "昆明",
          "西安", "兰州", "西宁", "银川", "乌鲁木齐", "呼和浩特", "南宁", "桂林", "海口", "三亚", "拉萨", "石家庄",
          "唐山", "保定", "太原", "大连", "沈阳", "长春", "哈尔滨", "佛山", "东莞", "珠海", "惠州", "中山", "南通",
          "扬州", "徐州", "盐城", "镇江", "泰州", "金华", "台州", "湖州", "芜湖", "漳州", "赣州", "临沂", "淄博")
REGION = "|".join(sorted(PROVINCES + CITIES, key=len, reverse=True))
_MARKER = "(?:分公司|分行|支行|营业部|办事处|分店|分厂)"
#: A branch marker at the end, with the place before it when it is a known one (北京分公司),
#: else the two characters before the marker (a 第一分店, a 徐汇支行).
BRANCH = re.compile(f"(?:(?:{REGION})(?:省|市|区|县)?|[\\u4e00-\\u9fff0-9a-z]{{0,2}}){_MARKER}$")
_KNOWN_BRANCH = re.compile(f"(?:{REGION})(?:省|市|区|县)?{_MARKER}$")


def split_branch(key: str) -> tuple[str, str | None]:
    """(name without the branch part, the branch part or None) of a folded name key."""
    m = _KNOWN_BRANCH.search(key) or BRANCH.search(key)
    if not m:
        return key, None
    return key[: m.start()], key[m.start():]


def name_key(names: pd.Series) -> pd.Series:
    """One key per name; equal keys mean "typed differently, same registered name".

    The legal form is dropped where it ends the name and where it stands before a branch
    marker (…有限公司北京分公司 → …北京分公司), never from inside the branch marker itself.
    """
    s = names.astype("string").str.normalize("NFKC").str.lower()
    s = s.str.replace(_NOISE, "", regex=True)
    out = []
    for key in s.astype(object):
        if not isinstance(key, str) or not key:
            out.append(None)
            continue
        base, branch = split_branch(key)
        base = _FORM_AT_END.sub("", base)
        out.append((base + (branch or "")) or None)
    return pd.Series(out, index=names.index, dtype=object)
